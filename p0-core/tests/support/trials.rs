//! Data-driven tests under libtest-mimic: one named trial per case, so that a failing case
//! names itself and the others still run. A suite's fixture (a database, a whole stack) is
//! started once, by the first trial that needs it — `--list`, or a filter that selects
//! nothing, starts nothing — and dropped on the suite's runtime when the run ends. The
//! standard test arguments (`--test-threads 2`, filters, `--exact`) work as under libtest.

use libtest_mimic::{Arguments, Conclusion, Failed, Trial};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

type Start<T> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = T>>> + Send + Sync>;

/// The trials of one test binary: a tokio runtime and a fixture they share.
pub struct Suite<T> {
    rt: tokio::runtime::Runtime,
    fixture: OnceLock<Result<Arc<T>, String>>,
    start: Start<T>,
}

impl<T: Send + Sync + 'static> Suite<T> {
    /// A suite whose fixture `start` makes, on a multi-threaded runtime of `workers` threads.
    pub fn new<F, Fut>(workers: usize, start: F) -> Arc<Self>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        Arc::new(Self {
            rt,
            fixture: OnceLock::new(),
            start: Box::new(move || Box::pin(start())),
        })
    }

    /// The fixture, started by the first caller; a start that failed fails every trial.
    fn fixture(&self) -> Result<Arc<T>, Failed> {
        self.fixture
            .get_or_init(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    Arc::new(self.rt.block_on((self.start)()))
                }))
                .map_err(|e| panic_text(&*e))
            })
            .clone()
            .map_err(|e| format!("the suite's fixture did not start: {e}").into())
    }

    /// A trial named `name` that runs `case` on the fixture (an assertion that fails in it
    /// fails this trial only).
    pub fn trial<C, Fut>(self: &Arc<Self>, name: impl Into<String>, case: C) -> Trial
    where
        C: FnOnce(Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let suite = self.clone();
        Trial::test(name, move || {
            let fx = suite.fixture()?;
            suite.rt.block_on(case(fx));
            Ok(())
        })
    }

    /// A trial that waits for the gates `after` to open, and counts itself out of `done` when
    /// it ends (passed or not): for checks that must follow the cases before them.
    pub fn ordered<C, Fut>(
        self: &Arc<Self>,
        name: impl Into<String>,
        after: Vec<Arc<Gate>>,
        done: Option<Arc<Gate>>,
        case: C,
    ) -> Trial
    where
        C: FnOnce(Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let suite = self.clone();
        Trial::test(name, move || {
            let _leaving = done.map(Leaving);
            for g in after {
                g.wait();
            }
            let fx = suite.fixture()?;
            suite.rt.block_on(case(fx));
            Ok(())
        })
    }

    /// Runs the trials, then drops the fixture on the runtime; returns the run's conclusion.
    pub fn run(self: Arc<Self>, args: &Arguments, trials: Vec<Trial>) -> Conclusion {
        self.run_then(args, trials, |_| {})
    }

    /// Runs the trials, shows the fixture (if a trial started it) to `summary`, then drops it
    /// on the runtime; returns the run's conclusion.
    pub fn run_then(
        self: Arc<Self>,
        args: &Arguments,
        trials: Vec<Trial>,
        summary: impl FnOnce(&T),
    ) -> Conclusion {
        let conclusion = libtest_mimic::run(args, trials);
        if let Some(Ok(fx)) = self.fixture.get() {
            summary(fx);
        }
        self.finish();
        conclusion
    }

    /// Drops the fixture on the runtime, once the trials (and their handles on the suite) are
    /// gone: for a binary that runs the trials of several suites in one `libtest_mimic::run`.
    pub fn finish(self: Arc<Self>) {
        match Arc::into_inner(self) {
            Some(Suite { rt, fixture, .. }) => {
                let _inside = rt.enter();
                drop(fixture);
            }
            None => eprintln!("a handle on the suite outlived its run: its fixture is not dropped"),
        }
    }
}

/// Opens once the trials counted into it have all ended.
#[derive(Debug, Default)]
pub struct Gate {
    left: Mutex<usize>,
    opened: Condvar,
}

impl Gate {
    /// A closed gate; [`Gate::expect`] says how many trials it waits for.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Waits for those of `trials` that this run will run (filters and `--ignored` applied).
    pub fn expect(&self, args: &Arguments, trials: &[Trial]) {
        let n = trials
            .iter()
            .filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
            .count();
        *self.left.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    fn wait(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            left = self.opened.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn leave(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.opened.notify_all();
        }
    }
}

/// Counts a trial out of its gate when it ends, even by a panic.
struct Leaving(Arc<Gate>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A case's description as a test name: `grant the agent's own role` →
/// `grant_the_agent_s_own_role`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}
