//! Running one test binary in-process, its serial output captured, under a
//! watchdog that bounds it even if the machine never returns.

use softvm_machine::{run_file, status, Capture, MachineConfig, Outcome};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

/// How a run ended, as the runner sees it.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The full status (a guest exit value of 0x80 or more keeps all its
    /// bits here, unlike a process status).
    pub status: u64,
    /// softvm's own one-line diagnostic, if any.
    pub message: Option<String>,
    pub output: Vec<u8>,
    /// Bytes beyond the capture limit that were dropped.
    pub dropped: u64,
    pub time: Duration,
}

/// The prefix of the names of the threads that run guests.
const THREAD_PREFIX: &str = "softvm-test:";

thread_local! {
    /// The last panic of a guest thread, formatted by the hook.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keep panics of guest threads off stderr: they are reported as the test's
/// failure (status 12) instead. Other threads keep the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(THREAD_PREFIX))
            {
                let what = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC.with(|p| *p.borrow_mut() = Some(format!("{what}{at}")));
            } else {
                prev(info);
            }
        }));
    });
}

/// Extra time the watchdog grants beyond the configured timeout before it
/// abandons a run that did not stop by itself.
fn grace(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_secs(2))
}

/// Run `path` with `cfg` on a thread of its own. If the machine has not
/// returned by its timeout plus a grace period, the run is abandoned (its
/// thread left to finish in the background) and reported as a timeout, so
/// a test can never hold the runner. Without a timeout (kvm-unit-tests'
/// `timeout = 0`, which means none) the run is waited for.
pub fn run(name: &str, path: PathBuf, cfg: MachineConfig) -> RunResult {
    let limit = cfg.timeout.map(|t| t + grace(t));
    supervise(name, limit, move |out| {
        run_file(&path, &cfg, out).map_err(anyhow::Error::from)
    })
}

/// Run `job` on a thread named after the test, its output captured, and
/// wait for it at most `limit` (`None`: as long as it takes).
fn supervise<F>(name: &str, limit: Option<Duration>, job: F) -> RunResult
where
    F: FnOnce(Capture) -> anyhow::Result<Outcome> + Send + 'static,
{
    install_panic_hook();
    let start = Instant::now();
    let capture = Capture::default();
    let (tx, rx) = mpsc::channel();
    let out = capture.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{THREAD_PREFIX}{name}"))
        .stack_size(16 << 20)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(out)));
            let r = r.map_err(|_| {
                PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "panic".into())
            });
            let _ = tx.send(r);
        });
    let own = |s: i32| u64::from(s.unsigned_abs());
    let (status, message) = match spawned {
        Err(e) => (
            own(status::INTERNAL),
            Some(format!("cannot start a thread: {e}")),
        ),
        Ok(_) => match limit.map_or_else(
            || rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            |l| rx.recv_timeout(l),
        ) {
            Ok(Ok(Ok(o))) => (o.status(), o.message),
            Ok(Ok(Err(e))) => (own(status::USAGE), Some(format!("{e:#}"))),
            Ok(Err(p)) => (
                own(status::INTERNAL),
                Some(format!("internal error in softvm: {p}")),
            ),
            Err(mpsc::RecvTimeoutError::Timeout) => (
                own(status::TIMEOUT),
                Some(format!(
                    "timeout: still running {:.1} s after the start, abandoned",
                    start.elapsed().as_secs_f64()
                )),
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => (
                own(status::INTERNAL),
                Some("internal error in softvm: the guest thread vanished".into()),
            ),
        },
    };
    let (output, dropped) = capture.take();
    RunResult {
        status,
        message,
        output,
        dropped,
        time: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn missing_file_is_a_load_error() {
        let cfg = MachineConfig {
            timeout: Some(Duration::from_secs(5)),
            ..MachineConfig::default()
        };
        let r = run("missing", PathBuf::from("/nonexistent/x.elf"), cfg);
        assert_eq!(r.status, 2);
        assert!(r.message.unwrap().contains("/nonexistent/x.elf"));
    }

    #[test]
    fn a_run_that_never_returns_is_abandoned() {
        let t = Instant::now();
        let r = supervise("hangs", Some(Duration::from_millis(100)), |mut out| {
            out.write_all(b"partial\n")?;
            std::thread::sleep(Duration::from_secs(30));
            unreachable!()
        });
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(r.status, 124);
        assert!(r.message.unwrap().contains("abandoned"));
        assert_eq!(r.output, b"partial\n");
    }

    #[test]
    fn without_a_limit_the_run_is_waited_for() {
        let t = Instant::now();
        let r = supervise("slow", None, |_| {
            std::thread::sleep(Duration::from_millis(300));
            anyhow::bail!("finished")
        });
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!((r.status, r.message.as_deref()), (2, Some("finished")));
    }

    #[test]
    fn a_panic_is_an_internal_error() {
        let r = supervise("panics", Some(Duration::from_secs(10)), |_| panic!("boom"));
        assert_eq!(r.status, 12);
        let m = r.message.unwrap();
        assert!(m.contains("boom") && m.contains("exec.rs"), "{m}");
    }
}
