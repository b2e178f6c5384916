//! The log filter in the running kernel: a target's level covers its
//! module and those below, the most specific name wins, and the maximum
//! the `log` crate checks follows.

use super::*;
use crate::ktest::prelude::*;

ktest! {
    fn a_target_level_covers_its_modules_and_the_most_specific_wins() {
        let saved = snapshot();
        set_default(Level::Warn);
        let set = set_target("memory", Level::Debug).is_ok() && set_target("pages", Level::Trace).is_ok();
        let results = (
            level_for("rvos::memory::pages"),
            level_for("rvos::memory::heap"),
            level_for("rvos::arch::riscv64::smp"),
            log::max_level(),
            alloc::format!("{Current}"),
            set_target("pagez", Level::Debug).is_err(),
        );
        restore(saved);
        kassert!(set, "known targets refused");
        kassert_eq!(results.0, LevelFilter::Trace);
        kassert_eq!(results.1, LevelFilter::Debug);
        kassert_eq!(results.2, LevelFilter::Warn);
        kassert_eq!(results.3, LevelFilter::Trace);
        kassert_eq!(results.4.as_str(), "warn,memory:debug,pages:trace");
        kassert!(results.5, "an unknown target was accepted");
        Ok(())
    }
}
