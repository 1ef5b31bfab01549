//! Fencing: an apply that lost its lock writes nothing more. The first apply pauses at an exact
//! step (`RAYSTACK_PAUSE_AT`) and is frozen there (SIGSTOP), so its lease is not renewed and
//! expires; a second apply of a changed stack takes the lock over and converges; the first is
//! then resumed (SIGCONT, and `RAYSTACK_RESUME_WHEN`'s file) and must stop without touching any
//! object, instead of reverting the second run's work.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

fn kubernetes_stack(replicas: u32) -> String {
    stack_toml(&worker("cpu", replicas), "", "").replace(
        "[cluster]",
        "[state]\nbackend = \"kubernetes\"\n\n[cluster]",
    )
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Every object's resourceVersion, in a fixed order.
fn versions(env: &Env) -> Vec<(String, Value)> {
    all_objects()
        .into_iter()
        .map(|(path, name)| {
            let obj = env
                .fake
                .get(&format!("{path}/{name}"))
                .unwrap_or(Value::Null);
            (name, obj["metadata"]["resourceVersion"].clone())
        })
        .collect()
}

#[test]
fn an_apply_resumed_after_its_lease_expired_writes_nothing() {
    let env = Env::new(&[]);
    env.write_stack(&kubernetes_stack(1));
    let resume = env.dir.path().join("resume");
    let mut first = env
        .cmd(&["apply", env.stack_arg(), "--auto-approve"])
        .env("RAYSTACK_LEASE_SECONDS", "1")
        .env("RAYSTACK_PAUSE_AT", "recorded:3")
        .env("RAYSTACK_RESUME_WHEN", &resume)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "never paused:\n{seen}"
        );
        seen.push_str(&line);
        if line.trim_end() == "paused at recorded:3 (RAYSTACK_PAUSE_AT)" {
            break;
        }
    }
    // Frozen: no renewal from here on.
    signal(first.id(), "-STOP");
    env.write_stack(&kubernetes_stack(2));
    // The second run is refused while the first's lease lasts, then takes it over (bounded).
    let mut second = None;
    for _ in 0..80 {
        let r = env.run(&["apply", env.stack_arg(), "--auto-approve"]);
        if r.code == 0 {
            second = Some(r);
            break;
        }
        assert!(r.stderr.contains("is locked"), "{r}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let second = second.expect("the first run's lease never expired");
    assert!(
        second.stderr.contains("took over the expired lock"),
        "{second}"
    );
    let before = versions(&env);
    // Resumed: it continues from the pause, where its next step is a write.
    std::fs::write(&resume, "").unwrap();
    signal(first.id(), "-CONT");
    stderr.read_to_string(&mut seen).unwrap();
    let code = first.wait().unwrap().code();
    assert_eq!(code, Some(1), "{seen}");
    let tail = &seen[seen.find("paused at").unwrap()..];
    insta::assert_snapshot!(
        "resumed_after_lease_expired_stderr",
        without_durations(tail)
    );
    assert_eq!(
        versions(&env),
        before,
        "the resumed run wrote to the cluster"
    );
    let rc = env.fake.get(&env.ns_path("rayclusters", NAME)).unwrap();
    assert_eq!(rc["spec"]["workerGroupSpecs"][0]["replicas"], 2);
    env.assert_no_changes();
}

/// `text` with each step's duration (`(1.8s)`) as `([T]s)`: it depends on the machine's load.
fn without_durations(text: &str) -> String {
    text.lines()
        .map(|l| match l.rfind(" (") {
            Some(at) if l.ends_with("s)") && l[at + 2..l.len() - 2].parse::<f64>().is_ok() => {
                format!("{} ([T]s)", &l[..at])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
