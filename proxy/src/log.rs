//! A leveled logger to stderr. The level comes from `AIGW_LOG` (error|warn|info|debug) once at
//! start; a log line is one `write` of a pre-formatted buffer, so lines never interleave.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(2);

/// Severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// Reads `AIGW_LOG`; an unknown value keeps `info` and says so.
pub fn init_from_env() {
    let value = std::env::var("AIGW_LOG").unwrap_or_default();
    let level = match value.to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "" | "info" => Level::Info,
        "debug" | "trace" => Level::Debug,
        other => {
            write_line(
                Level::Warn,
                format_args!("AIGW_LOG={other} is not a level (error|warn|info|debug); using info"),
            );
            Level::Info
        }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

fn write_line(level: Level, args: Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{}.{:03} {} {}\n",
        now.as_secs(),
        now.subsec_millis(),
        level.as_str(),
        args
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn log(level: Level, args: Arguments<'_>) {
    if enabled(level) {
        write_line(level, args);
    }
}

pub fn error(args: Arguments<'_>) {
    log(Level::Error, args)
}

pub fn warn(args: Arguments<'_>) {
    log(Level::Warn, args)
}

pub fn info(args: Arguments<'_>) {
    log(Level::Info, args)
}

pub fn debug(args: Arguments<'_>) {
    log(Level::Debug, args)
}
