//! When to fail: Linux's fault-attr semantics (`interval`, `probability`,
//! `times`, `space`) plus `min_order`, a name filter, and `fail-nth`.
//!
//! See Linux's `Documentation/fault-injection/fault-injection.rst`:
//! a call is *eligible* if it passes the filters (name, order); every
//! `interval`-th eligible call is a candidate; a candidate fails with
//! `probability` percent while fewer than `times` failures were injected
//! (`times < 0`: no limit) and once `space` bytes of eligible requests have
//! been let through. `fail_nth = N` fails exactly the N-th eligible call
//! from now (1 = the next one) and then disarms; it overrides the rest.

use core::fmt;

/// The knobs, all off by default (nothing fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultConfig {
    /// Percent of candidate calls that fail (0..=100).
    pub probability: u32,
    /// Only every `interval`-th eligible call is a candidate (>= 1).
    pub interval: u64,
    /// Most failures to inject; negative means no limit.
    pub times: i64,
    /// Bytes of eligible requests let through before failures start.
    pub space: u64,
    /// Requests of a smaller order (log2 of pages) are never failed.
    pub min_order: u32,
    /// Only allocators whose name contains this are failed (empty: all).
    pub filter: &'static str,
}

impl FaultConfig {
    pub const OFF: FaultConfig = FaultConfig {
        probability: 0,
        interval: 1,
        times: 0,
        space: 0,
        min_order: 0,
        filter: "",
    };
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self::OFF
    }
}

/// A boot-argument value that could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFaultSpec<'a>(pub &'a str);

impl fmt::Display for BadFaultSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad fault-injection spec `{}`: expected <interval>,<probability>,<space>,<times>[,<min_order>] \
             as in Linux's failslab= and fail_page_alloc=",
            self.0
        )
    }
}

impl FaultConfig {
    /// Parses Linux's boot syntax `<interval>,<probability>,<space>,<times>`
    /// (e.g. `fail_page_alloc=1,10,0,5`) with an optional fifth field,
    /// `min_order`.
    pub fn parse(text: &str) -> Result<FaultConfig, BadFaultSpec<'_>> {
        let bad = BadFaultSpec(text);
        let mut fields = text.split(',').map(str::trim);
        let mut next = || fields.next().ok_or(bad);
        let interval: u64 = next()?.parse().map_err(|_| bad)?;
        let probability: u32 = next()?.parse().map_err(|_| bad)?;
        let space: u64 = next()?.parse().map_err(|_| bad)?;
        let times: i64 = next()?.parse().map_err(|_| bad)?;
        let min_order = match fields.next() {
            Some(order) => order.parse().map_err(|_| bad)?,
            None => 0,
        };
        if interval == 0 || probability > 100 || fields.next().is_some() {
            return Err(bad);
        }
        Ok(FaultConfig {
            probability,
            interval,
            times,
            space,
            min_order,
            filter: "",
        })
    }
}

/// One allocation request, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The allocator's (or cache's) name.
    pub name: &'a str,
    pub bytes: usize,
    /// log2 of the pages the request needs (0 for byte requests that fit
    /// in a page).
    pub order: u32,
}

/// The policy's state: configuration, counters, and its random stream.
#[derive(Debug, Clone)]
pub struct FaultPolicy {
    config: FaultConfig,
    fail_nth: u64,
    eligible: u64,
    injected: u64,
    /// Failures still allowed since the last `configure` (Linux's `times`
    /// counts down the same way); negative: no limit.
    times_left: i64,
    space_left: u64,
    rng: u64,
}

impl FaultPolicy {
    pub const fn new(config: FaultConfig, seed: u64) -> Self {
        FaultPolicy {
            config,
            fail_nth: 0,
            eligible: 0,
            injected: 0,
            times_left: config.times,
            space_left: config.space,
            rng: seed | 1,
        }
    }

    pub fn config(&self) -> FaultConfig {
        self.config
    }

    /// Replaces the configuration (counters are kept; `space` and `times`
    /// restart, as writing them does in Linux's debugfs).
    pub fn configure(&mut self, config: FaultConfig) {
        self.config = config;
        self.times_left = config.times;
        self.space_left = config.space;
    }

    /// Fails exactly the `n`-th eligible call from now (1 = the next);
    /// 0 disarms.
    pub fn set_fail_nth(&mut self, n: u64) {
        self.fail_nth = n;
    }

    /// Whether a `fail_nth` is still pending.
    pub fn fail_nth_pending(&self) -> bool {
        self.fail_nth != 0
    }

    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// Eligible calls seen so far.
    pub fn eligible(&self) -> u64 {
        self.eligible
    }

    fn random_percent(&mut self) -> u32 {
        // xorshift64: the policy only needs a cheap, seedable coin.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) as u32
    }

    /// Decides whether `request` fails.
    pub fn should_fail(&mut self, request: Request<'_>) -> bool {
        let config = self.config;
        let filtered_out = !config.filter.is_empty() && !request.name.contains(config.filter);
        if filtered_out || request.order < config.min_order {
            return false;
        }
        self.eligible += 1;
        if self.fail_nth != 0 {
            self.fail_nth -= 1;
            let fail = self.fail_nth == 0;
            self.injected += u64::from(fail);
            return fail;
        }
        if config.probability == 0 || self.times_left == 0 {
            return false;
        }
        if self.space_left > 0 {
            self.space_left = self.space_left.saturating_sub(request.bytes as u64);
            return false;
        }
        if !self.eligible.is_multiple_of(config.interval) {
            return false;
        }
        let fail = config.probability == 100 || self.random_percent() < config.probability;
        if fail {
            self.injected += 1;
            if self.times_left > 0 {
                self.times_left -= 1;
            }
        }
        fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Request<'static> = Request {
        name: "pages",
        bytes: 4096,
        order: 0,
    };

    #[test]
    fn parses_linux_syntax() {
        let config = FaultConfig::parse("1,10,0,5").unwrap();
        assert_eq!(
            (
                config.interval,
                config.probability,
                config.space,
                config.times
            ),
            (1, 10, 0, 5)
        );
        assert_eq!(FaultConfig::parse("2,100,4096,-1,3").unwrap().min_order, 3);
        for bad in [
            "",
            "1,10",
            "0,10,0,1",
            "1,101,0,1",
            "1,x,0,1",
            "1,1,1,1,1,1",
        ] {
            assert!(FaultConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fail_nth_fails_exactly_that_call_once() {
        let mut policy = FaultPolicy::new(FaultConfig::OFF, 1);
        policy.set_fail_nth(3);
        let outcomes: [bool; 5] = core::array::from_fn(|_| policy.should_fail(PAGE));
        assert_eq!(outcomes, [false, false, true, false, false]);
        assert_eq!(policy.injected(), 1);
    }

    #[test]
    fn interval_times_and_space_bound_the_failures() {
        let config = FaultConfig {
            probability: 100,
            interval: 2,
            times: 2,
            space: 8192,
            ..FaultConfig::OFF
        };
        let mut policy = FaultPolicy::new(config, 1);
        let outcomes: [bool; 10] = core::array::from_fn(|_| policy.should_fail(PAGE));
        // Two calls use up the space; then every second call fails, twice.
        assert_eq!(
            outcomes,
            [
                false, false, false, true, false, true, false, false, false, false
            ]
        );
    }

    #[test]
    fn configuring_again_gives_times_afresh() {
        let config = FaultConfig {
            probability: 100,
            times: 2,
            ..FaultConfig::OFF
        };
        let mut policy = FaultPolicy::new(config, 1);
        let first: [bool; 3] = core::array::from_fn(|_| policy.should_fail(PAGE));
        assert_eq!(first, [true, true, false]);
        // As writing `times` in Linux's debugfs: two more, whatever came before.
        policy.configure(config);
        let second: [bool; 3] = core::array::from_fn(|_| policy.should_fail(PAGE));
        assert_eq!(second, [true, true, false]);
        assert_eq!(policy.injected(), 4);
    }

    #[test]
    fn filters_by_name_and_order() {
        let config = FaultConfig {
            probability: 100,
            times: -1,
            min_order: 2,
            filter: "slab",
            ..FaultConfig::OFF
        };
        let mut policy = FaultPolicy::new(config, 1);
        assert!(!policy.should_fail(Request {
            name: "slab:task",
            bytes: 4096,
            order: 1
        }));
        assert!(!policy.should_fail(Request {
            name: "pages",
            bytes: 16384,
            order: 2
        }));
        assert!(policy.should_fail(Request {
            name: "slab:task",
            bytes: 16384,
            order: 2
        }));
        assert_eq!(policy.eligible(), 1);
    }

    #[test]
    fn probability_is_roughly_honoured() {
        let config = FaultConfig {
            probability: 25,
            times: -1,
            ..FaultConfig::OFF
        };
        let mut policy = FaultPolicy::new(config, 12345);
        let failures = (0..10_000).filter(|_| policy.should_fail(PAGE)).count();
        assert!((2000..3000).contains(&failures), "{failures}");
    }
}
