//! Retry policies: how many attempts a step gets and how long to wait between them.
//!
//! `retry.max` is the total number of attempts, counting the first. The delay
//! before attempt `n + 1` is `delayMs` (constant), `delayMs * n` (linear) or
//! `delayMs * 2^(n-1)` (exponential).

use serde::{Deserialize, Serialize};

use waymark_core::error::{Error, Result};

/// How the delay between attempts grows.
///
/// ```ts
/// await run.step("search", fn, { retry: { max: 3, backoff: "linear", delayMs: 500 } });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backoff {
    /// The same delay before every retry.
    Constant,
    /// `delayMs * n` before attempt `n + 1`.
    Linear,
    /// `delayMs * 2^(n-1)` before attempt `n + 1` (the default).
    Exponential,
}

impl Backoff {
    /// The API string: `"constant"`, `"linear"` or `"exponential"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backoff::Constant => "constant",
            Backoff::Linear => "linear",
            Backoff::Exponential => "exponential",
        }
    }

    /// Parses the API string; `None` for anything else (case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "constant" => Some(Backoff::Constant),
            "linear" => Some(Backoff::Linear),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }
}

/// A step's retry policy. The default is one attempt, exponential backoff, 1000 ms.
///
/// ```ts
/// retry: { max: 3, backoff: "exponential", delayMs: 500 }   // waits 500, then 1000
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total number of attempts in a series, counting the first. At least 1.
    pub max: u32,
    /// How the delay grows from one retry to the next.
    pub backoff: Backoff,
    /// The base delay in milliseconds. Finite and not negative.
    pub delay_ms: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max: 1,
            backoff: Backoff::Exponential,
            delay_ms: 1000.0,
        }
    }
}

impl RetryPolicy {
    /// Checks the policy: `max` at least 1, `delay_ms` finite and not negative.
    /// Fails with `INVALID_INPUT` otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.max == 0 {
            return Err(Error::invalid(
                "retry.max must be at least 1 (it counts the first attempt)",
            ));
        }
        if !self.delay_ms.is_finite() || self.delay_ms < 0.0 {
            return Err(Error::invalid(format!(
                "retry.delayMs must be a finite number >= 0, got {}",
                waymark_core::error::Num(self.delay_ms)
            )));
        }
        Ok(())
    }

    /// Whether a series that has used `attempts` attempts may start another.
    pub fn attempts_remain(&self, attempts: u32) -> bool {
        attempts < self.max
    }

    /// The delay in milliseconds before attempt `attempt + 1`, i.e. after `attempt`
    /// attempts have failed: `delay_ms` (constant), `delay_ms * attempt` (linear)
    /// or `delay_ms * 2^(attempt-1)` (exponential).
    ///
    /// `attempt == 0` (nothing has run yet) is 0. The result is never NaN or
    /// negative; a product too large for an `f64` saturates at `f64::MAX`, so
    /// callers that feed it to a timer must clamp it to the timer's own range.
    pub fn delay_after(&self, attempt: u32) -> f64 {
        if attempt == 0 || self.delay_ms.is_nan() || self.delay_ms <= 0.0 {
            return 0.0;
        }
        let raw = match self.backoff {
            Backoff::Constant => self.delay_ms,
            Backoff::Linear => self.delay_ms * f64::from(attempt),
            Backoff::Exponential => {
                // 2^1100 is already infinite; clamping keeps the cast to i32 exact.
                let exp = (attempt - 1).min(1100) as i32;
                self.delay_ms * 2f64.powi(exp)
            }
        };
        if raw.is_finite() {
            raw
        } else {
            f64::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, delay_ms: f64) -> RetryPolicy {
        RetryPolicy {
            max: 5,
            backoff,
            delay_ms,
        }
    }

    #[test]
    fn defaults_match_the_api() {
        let p = RetryPolicy::default();
        assert_eq!(p.max, 1);
        assert_eq!(p.backoff, Backoff::Exponential);
        assert_eq!(p.delay_ms, 1000.0);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn backoff_round_trips_its_strings() {
        for b in [Backoff::Constant, Backoff::Linear, Backoff::Exponential] {
            assert_eq!(Backoff::parse(b.as_str()), Some(b));
        }
        assert_eq!(Backoff::parse("Exponential"), None);
        assert_eq!(Backoff::parse(""), None);
    }

    #[test]
    fn constant_backoff() {
        let p = policy(Backoff::Constant, 500.0);
        assert_eq!([1, 2, 3, 10].map(|n| p.delay_after(n)), [500.0, 500.0, 500.0, 500.0]);
    }

    #[test]
    fn linear_backoff() {
        let p = policy(Backoff::Linear, 500.0);
        assert_eq!([1, 2, 3, 10].map(|n| p.delay_after(n)), [500.0, 1000.0, 1500.0, 5000.0]);
    }

    #[test]
    fn exponential_backoff() {
        let p = policy(Backoff::Exponential, 500.0);
        assert_eq!(
            [1, 2, 3, 4, 5].map(|n| p.delay_after(n)),
            [500.0, 1000.0, 2000.0, 4000.0, 8000.0]
        );
    }

    #[test]
    fn no_delay_before_the_first_attempt() {
        for b in [Backoff::Constant, Backoff::Linear, Backoff::Exponential] {
            assert_eq!(policy(b, 500.0).delay_after(0), 0.0);
        }
    }

    #[test]
    fn huge_delays_saturate_instead_of_overflowing() {
        let p = policy(Backoff::Exponential, 1000.0);
        assert_eq!(p.delay_after(u32::MAX), f64::MAX);
        assert_eq!(p.delay_after(2000), f64::MAX);
        let p = policy(Backoff::Linear, f64::MAX);
        assert_eq!(p.delay_after(u32::MAX), f64::MAX);
        // Zero times "infinity" must not become NaN.
        let p = policy(Backoff::Exponential, 0.0);
        assert_eq!(p.delay_after(u32::MAX), 0.0);
    }

    #[test]
    fn validation_rejects_bad_policies() {
        let bad = [
            RetryPolicy {
                max: 0,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                delay_ms: -1.0,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                delay_ms: f64::NAN,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                delay_ms: f64::INFINITY,
                ..RetryPolicy::default()
            },
        ];
        for p in bad {
            let err = p.validate().expect_err("policy should be invalid");
            assert_eq!(err.code().as_str(), "INVALID_INPUT", "{p:?}");
        }
        assert!(RetryPolicy {
            delay_ms: 0.0,
            ..RetryPolicy::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn attempts_remain_counts_the_first_attempt() {
        let p = RetryPolicy {
            max: 3,
            ..RetryPolicy::default()
        };
        assert!(p.attempts_remain(0));
        assert!(p.attempts_remain(2));
        assert!(!p.attempts_remain(3));
        assert!(!p.attempts_remain(4));
    }
}
