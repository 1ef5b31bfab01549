//! A test hook for crash tests: `RAYSTACK_PAUSE_AT=<point>:<n>` makes apply stop for good the
//! n-th time it reaches `<point>`, after reporting [`Event::Paused`], so a test can SIGKILL the
//! process at an exact step instead of at a guessed instant (docs/design.md §10.3). Unset, as in
//! every normal run, it does nothing. Points: `planned` (the plan is made and shown, the lock
//! held, nothing written yet: before the prompt), `applied` (the server accepted an object, its
//! state entry is not written yet) and `recorded` (state written, readiness not yet awaited).
//! With `RAYSTACK_RESUME_WHEN=<path>` as well, the pause ends once that file exists, so a test
//! can freeze the process (SIGSTOP) at the step, let the world move on, and resume it there.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Event, Progress};

/// The variable that names the pause point.
pub const PAUSE_AT: &str = "RAYSTACK_PAUSE_AT";
/// The variable that names the file whose existence ends the pause.
pub const RESUME_WHEN: &str = "RAYSTACK_RESUME_WHEN";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Planned,
    Applied,
    Recorded,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Planned => "planned",
            Point::Applied => "applied",
            Point::Recorded => "recorded",
        }
    }

    fn counter(self) -> &'static AtomicUsize {
        static PLANNED: AtomicUsize = AtomicUsize::new(0);
        static APPLIED: AtomicUsize = AtomicUsize::new(0);
        static RECORDED: AtomicUsize = AtomicUsize::new(0);
        match self {
            Point::Planned => &PLANNED,
            Point::Applied => &APPLIED,
            Point::Recorded => &RECORDED,
        }
    }
}

/// `applied:3` → (Applied, 3). Anything else never pauses.
fn parse(value: &str) -> Option<(Point, usize)> {
    let (name, n) = value.split_once(':')?;
    let point = [Point::Planned, Point::Applied, Point::Recorded]
        .into_iter()
        .find(|p| p.name() == name)?;
    Some((point, n.parse().ok().filter(|n| *n > 0)?))
}

fn target() -> Option<(Point, usize)> {
    static TARGET: OnceLock<Option<(Point, usize)>> = OnceLock::new();
    *TARGET.get_or_init(|| std::env::var(PAUSE_AT).ok().as_deref().and_then(parse))
}

/// Counts one arrival at `point`; when it is the one `RAYSTACK_PAUSE_AT` names, reports it and
/// returns only once a stop is asked for ([`super::interrupt`]) or the `RAYSTACK_RESUME_WHEN`
/// file exists: the process waits to be killed, interrupted or resumed.
pub async fn reached(point: Point, progress: &mut dyn Progress) {
    let Some((wanted, n)) = target() else {
        return;
    };
    let count = point.counter().fetch_add(1, Ordering::SeqCst) + 1;
    if point == wanted && count == n {
        progress.event(Event::Paused {
            at: format!("{}:{n}", point.name()),
        });
        let resume = std::env::var_os(RESUME_WHEN).map(std::path::PathBuf::from);
        match resume {
            None => super::interrupt::wait().await,
            Some(path) => {
                while !path.exists() {
                    if super::interrupt::sleep(std::time::Duration::from_millis(50)).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_known_point_with_a_positive_count_parses() {
        assert_eq!(parse("applied:3"), Some((Point::Applied, 3)));
        assert_eq!(parse("recorded:1"), Some((Point::Recorded, 1)));
        assert_eq!(parse("planned:1"), Some((Point::Planned, 1)));
        for bad in ["applied", "applied:0", "applied:x", "deleted:1", ":1", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
