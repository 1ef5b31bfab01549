//! The rendered `redis.conf` of every example stack, loaded by a real redis-server, yields
//! exactly the derived settings, and the server refuses clients without the password.
//! Needs /usr/bin/redis-server (or $REDIS_SERVER): missing is a failure, not a skip.

use crate::render_support as support;

use raystack::durability::redis_settings;
use raystack::render::render;
use support::RedisProcess;

fn rendered_conf(stack: &raystack::stack::Stack) -> String {
    let rendered = render(stack);
    let cm = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "ConfigMap")
        .unwrap();
    cm.manifest["data"]["redis.conf"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn redis_runs_with_the_derived_settings_for_every_example() {
    for (name, stack) in support::examples() {
        // The embedded backend deploys no Redis (render tests cover its RayCluster).
        if stack.durability.backend == raystack::stack::GcsBackend::Embedded {
            continue;
        }
        let settings = redis_settings(&stack.durability);
        let conf = rendered_conf(&stack);
        assert_eq!(
            conf,
            settings.to_redis_conf(),
            "{name}: the ConfigMap holds the derived conf"
        );
        let dir = tempfile::tempdir().unwrap();
        let redis = RedisProcess::start(&conf, dir.path());
        let mut con = redis.connect();
        let get = |con: &mut redis::Connection, k: &str| redis.config_get(con, k);
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        assert_eq!(
            get(&mut con, "appendonly"),
            yes_no(settings.appendonly),
            "{name}"
        );
        if let Some(fsync) = settings.appendfsync {
            assert_eq!(get(&mut con, "appendfsync"), fsync.as_str(), "{name}");
        }
        assert_eq!(
            get(&mut con, "save"),
            settings.save_config_value(),
            "{name}"
        );
        assert_eq!(get(&mut con, "maxmemory-policy"), "noeviction", "{name}");
        assert_eq!(get(&mut con, "no-appendfsync-on-rewrite"), "no", "{name}");
        assert_eq!(get(&mut con, "aof-use-rdb-preamble"), "yes", "{name}");
        assert_eq!(
            get(&mut con, "stop-writes-on-bgsave-error"),
            "yes",
            "{name}"
        );
        assert_eq!(get(&mut con, "protected-mode"), "yes", "{name}");
        // `dir` is overridden for the test exactly as it is mounted in the pod.
        assert_eq!(
            get(&mut con, "dir"),
            dir.path().canonicalize().unwrap().to_str().unwrap(),
            "{name}"
        );
        assert!(conf.contains("\ndir /data\n"), "{name}");
    }
}

#[test]
fn redis_requires_the_password() {
    let (_, stack) = support::examples()
        .into_iter()
        .find(|(n, _)| n == "local")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisProcess::start(&rendered_conf(&stack), dir.path());
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let mut con = anonymous.get_connection().unwrap();
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("NOAUTH") || err.code() == Some("NOAUTH"),
        "{err}"
    );
    let wrong = redis::Client::open(format!("redis://:wrong@127.0.0.1:{}/", redis.port)).unwrap();
    assert!(
        wrong.get_connection().is_err(),
        "a wrong password must be refused"
    );
    let mut con = redis.connect();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
}
