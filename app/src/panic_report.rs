//! One-line reports for panics on the compute backends' device threads.
//!
//! burn's CubeCL backends (wgpu, CUDA) run each device on server threads named `DSD-…` and
//! `DSU-…`. When one of them panics (running out of GPU memory, a driver without an adapter),
//! the default hook prints a trace for it, the calling thread then panics on a closed channel
//! and prints a second, unrelated trace, and the process may hang. The hook installed here turns
//! the first such panic into one `error:` line and exits with status 1; panics on other threads
//! keep the default behaviour (the data workers catch theirs and report them as errors).

use std::panic::PanicHookInfo;

use model::world::data::panic_message;

/// Does a thread of this name belong to a compute backend's device server?
pub fn is_device_thread(name: &str) -> bool {
    name.starts_with("DSD-") || name.starts_with("DSU-")
}

/// The one line printed for a device-thread panic.
pub fn device_failure_line(message: &str, thread: &str, location: Option<&str>) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let at = location.map(|l| format!(", at {l}")).unwrap_or_default();
    format!(
        "error: the compute backend failed: {first} (device thread {thread}{at}; \
         RUST_BACKTRACE=1 prints a trace)"
    )
}

/// Install the hook (keeps the default one for every other thread).
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        if !is_device_thread(name) {
            return default(info);
        }
        let location = info.location().map(|l| l.to_string());
        eprintln!(
            "{}",
            device_failure_line(&panic_message(info.payload()), name, location.as_deref())
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_threads_are_recognised_and_reported_on_one_line() {
        assert!(is_device_thread("DSD-3-0"));
        assert!(is_device_thread("DSU-1-2"));
        assert!(!is_device_thread("main"));
        assert!(!is_device_thread(""));
        let line = device_failure_line(
            "called `Result::unwrap()` on an `Err` value: OutOfMemory\nmore detail",
            "DSD-0-0",
            Some("server.rs:124:46"),
        );
        assert!(line.starts_with("error: the compute backend failed: called"));
        assert!(line.contains("OutOfMemory") && line.contains("DSD-0-0"));
        assert!(!line.contains('\n') && !line.contains("more detail"));
    }
}
