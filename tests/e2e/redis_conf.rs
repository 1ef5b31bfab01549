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

/// The rendered StatefulSet's container, run for real: its `sh -c` start script (only the mount
/// paths and the port rewritten) starts redis-server with the password from the environment,
/// yet neither the server's `/proc/PID/cmdline` nor its environment holds the password, and the
/// rendered readiness probe authenticates through `REDISCLI_AUTH`, not an argument.
#[test]
fn the_statefulset_keeps_the_password_out_of_process_arguments() {
    let (_, stack) = support::examples()
        .into_iter()
        .find(|(n, _)| n == "local")
        .unwrap();
    let rendered = render(&stack);
    let sts = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap();
    let container = &sts.manifest["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[..2], ["sh", "-c"]);
    let secret_env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"]["key"] == "password")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(!secret_env.is_empty());

    // The pod's mounts, as directories of this test: /etc/redis (the ConfigMap), /data (the PVC)
    // and, when the script uses one, the memory-backed auth directory.
    let root = tempfile::tempdir().unwrap();
    let conf_dir = root.path().join("etc-redis");
    let data_dir = root.path().join("data");
    let auth_dir = root.path().join("run-redis-auth");
    for d in [&conf_dir, &data_dir, &auth_dir] {
        std::fs::create_dir(d).unwrap();
    }
    let conf =
        rendered_conf(&stack).replace("\ndir /data\n", &format!("\ndir {}\n", data_dir.display()));
    std::fs::write(conf_dir.join("redis.conf"), conf).unwrap();
    let port = support::free_port();
    let script = command[2]
        .replace("/etc/redis", conf_dir.to_str().unwrap())
        .replace("/run/redis-auth", auth_dir.to_str().unwrap())
        .replace(
            "redis-server ",
            &format!("{} ", support::redis_server_binary().display()),
        );
    // The script's last command is the `exec redis-server …`; bind it to loopback on a free port.
    let script = format!("{script} --port {port} --bind 127.0.0.1");
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", &script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for name in &secret_env {
        sh.env(name, support::PASSWORD);
    }
    let child = sh.spawn().unwrap();
    let mut redis = support::RedisProcess::adopt(child, port, data_dir.clone());

    // `exec`: the shell became redis-server, so the child's pid is the server's.
    let pid = redis.child.id();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("redis-server"), "{cmdline}");
    assert!(
        !cmdline.contains(support::PASSWORD),
        "password in cmdline: {cmdline}"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains(support::PASSWORD),
        "password in the server's environment"
    );
    // The password still protects the server.
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut anonymous.get_connection().unwrap())
        .unwrap_err();
    assert!(
        err.to_string().contains("NOAUTH") || err.code() == Some("NOAUTH"),
        "{err}"
    );
    let mut con = redis.connect();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();

    // The readiness probe, as rendered, with the container's environment: PONG, no `-a`.
    let probe = container["readinessProbe"]["exec"]["command"][2]
        .as_str()
        .unwrap()
        .replace("-p 6379", &format!("-p {port}"));
    assert!(!probe.contains(" -a "), "{probe}");
    let mut run = std::process::Command::new("sh");
    run.args(["-c", &probe])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap());
    for name in &secret_env {
        run.env(name, support::PASSWORD);
    }
    let status = run.status().unwrap();
    assert!(status.success(), "the rendered readiness probe failed");
    redis.sigkill();
}

/// The rendered probes against a real redis-server that is loading a large append-only file
/// (slowed by Redis's own test knob `key-load-delay`, so loading lasts while the probes run):
/// liveness passes on the `LOADING` reply (killing a loading Redis would restart the load
/// forever), readiness fails until the data set is in memory, then passes; with no server at
/// all, liveness fails. Both authenticate through `REDISCLI_AUTH`, never an argument.
#[test]
fn probes_keep_a_loading_redis_alive_but_not_ready() {
    let (_, stack) = support::examples()
        .into_iter()
        .find(|(n, _)| n == "local")
        .unwrap();
    let rendered = render(&stack);
    let sts = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap();
    let container = &sts.manifest["spec"]["template"]["spec"]["containers"][0];
    let conf = rendered_conf(&stack);
    assert!(conf.contains("\nappendonly yes\n"), "{conf}");

    // A data set worth loading: 100 000 keys in the append-only file.
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProcess::start(&conf, dir.path());
    let mut con = redis.connect();
    for batch in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..5_000 {
            pipe.cmd("SET")
                .arg(format!("key:{batch}:{i}"))
                .arg("value")
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    // A clean shutdown fsyncs the append-only file.
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut con);
    let _ = redis.child.wait();
    let port = redis.port;

    // Restart it slowed down: 1 ms per key (100 s for the whole file), answering clients
    // every KiB of the file.
    let mut loading = std::process::Command::new(support::redis_server_binary())
        .arg(&redis.conf)
        .args(["--requirepass", support::PASSWORD])
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--key-load-delay", "1000"])
        .args(["--loading-process-events-interval-bytes", "1024"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let info = |field: &str| -> Option<String> {
        let mut con = client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))
            .ok()?;
        let text: String = redis::cmd("INFO").arg("persistence").query(&mut con).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while info("loading").as_deref() != Some("1") {
        assert!(
            loading.try_wait().unwrap().is_none(),
            "redis-server exited before loading"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server never reported loading:1"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let secret_env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"]["key"] == "password")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let probe = |which: &str| -> bool {
        let cmd = container[which]["exec"]["command"].as_array().unwrap();
        assert_eq!(cmd[..2], [serde_json::json!("sh"), serde_json::json!("-c")]);
        let script = cmd[2]
            .as_str()
            .unwrap()
            .replace("-p 6379", &format!("-p {port}"));
        assert!(!script.contains(support::PASSWORD), "{script}");
        let mut run = std::process::Command::new("sh");
        run.args(["-c", &script])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for name in &secret_env {
            run.env(name, support::PASSWORD);
        }
        run.status().unwrap().success()
    };

    assert!(
        probe("livenessProbe"),
        "liveness must pass while Redis loads"
    );
    assert!(
        !probe("readinessProbe"),
        "readiness must fail while Redis loads"
    );
    // Both probes ran while the load was still going on.
    assert_eq!(info("loading").as_deref(), Some("1"));

    // Let the load finish: both probes pass.
    let mut con = client
        .get_connection_with_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("key-load-delay")
        .arg("0")
        .query(&mut con)
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while info("loading").as_deref() != Some("0") {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server never finished loading"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let keys: u64 = redis::cmd("DBSIZE")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    assert_eq!(keys, 100_000);
    assert!(probe("readinessProbe"), "readiness after loading");
    assert!(probe("livenessProbe"), "liveness after loading");

    // No server: liveness fails.
    loading.kill().unwrap();
    loading.wait().unwrap();
    assert!(!probe("livenessProbe"), "liveness with Redis down");
}

/// The rendered `redis_exporter` sidecar, run as Debian's build of the same program with the
/// container's environment: it reads Redis with the password from `REDIS_PASSWORD` (never an
/// argument) and reports the persistence figures `raystack status` and the alerts use.
#[test]
fn the_exporter_sidecar_reads_redis_with_the_password_from_its_environment() {
    let (_, stack) = support::examples()
        .into_iter()
        .find(|(n, _)| n == "local")
        .unwrap();
    let rendered = render(&stack);
    let sts = rendered
        .objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap();
    let containers = sts.manifest["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let exporter = containers
        .iter()
        .find(|c| c["name"] == "redis-exporter")
        .expect("the exporter sidecar");
    assert!(exporter.get("command").is_none() && exporter.get("args").is_none());

    let dir = tempfile::tempdir().unwrap();
    let redis = RedisProcess::start(&rendered_conf(&stack), dir.path());
    let exporter = support::ExporterProcess::start(exporter, redis.port);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", exporter.child.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(support::PASSWORD),
        "password in the exporter's arguments"
    );
    let metrics = exporter.metrics();
    let value = |name: &str| -> Option<String> {
        metrics
            .lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    let got: Vec<(&str, Option<String>)> = [
        "redis_up",
        "redis_aof_enabled",
        "redis_aof_last_write_status",
        "redis_aof_last_bgrewrite_status",
        "redis_rdb_last_bgsave_status",
        "redis_aof_delayed_fsync",
        "redis_loading_dump_file",
    ]
    .into_iter()
    .map(|n| (n, value(n)))
    .collect();
    assert_eq!(
        got,
        [
            ("redis_up", Some("1".to_string())),
            ("redis_aof_enabled", Some("1".to_string())),
            ("redis_aof_last_write_status", Some("1".to_string())),
            ("redis_aof_last_bgrewrite_status", Some("1".to_string())),
            ("redis_rdb_last_bgsave_status", Some("1".to_string())),
            ("redis_aof_delayed_fsync", Some("0".to_string())),
            ("redis_loading_dump_file", Some("0".to_string())),
        ],
        "{metrics}"
    );
    for name in [
        "redis_rdb_last_save_timestamp_seconds",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
    ] {
        assert!(value(name).is_some(), "{name} missing:\n{metrics}");
    }
}
