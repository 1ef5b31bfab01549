//! Apply progress on stderr: one line per step, waits included, so a slow readiness wait is
//! never silent.

use std::io::Write;

use super::{GREEN, YELLOW, paint};
use crate::apply::{Event, Progress};
use crate::plan::Action;

pub struct StderrProgress {
    pub color: bool,
}

fn ing(a: Action) -> &'static str {
    match a {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
        Action::NoOp => "checking",
    }
}

fn ed(a: Action) -> &'static str {
    match a {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
        Action::NoOp => "unchanged",
    }
}

impl Progress for StderrProgress {
    fn event(&mut self, e: Event) {
        let line = match e {
            Event::Started { address, action } => format!("{address}: {}...", ing(action)),
            Event::Waiting { address, message } => paint(
                self.color,
                YELLOW,
                &format!("{address}: waiting: {message}"),
            ),
            Event::Ready {
                address,
                note,
                elapsed,
            } => {
                let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
                format!("{address}: ready after {:.1}s{note}", elapsed.as_secs_f64())
            }
            Event::Finished {
                address,
                action,
                elapsed,
            } => paint(
                self.color,
                GREEN,
                &format!("{address}: {} ({:.1}s)", ed(action), elapsed.as_secs_f64()),
            ),
            Event::Refreshed { address } => format!("{address}: unchanged; recorded in state"),
            Event::Paused { at } => format!("paused at {at} (RAYSTACK_PAUSE_AT)"),
            Event::Warning { address, message } => paint(
                self.color,
                YELLOW,
                &format!("{address}: warning: {message}"),
            ),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
