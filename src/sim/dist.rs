//! Time distributions of the scenario file (handle time, patience, answer delay, wrap-up).
//!
//! Owns only the sampling; it never keeps an RNG of its own: the caller passes the seeded stream
//! that the draw belongs to, which keeps every run reproducible.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::{Deserialize, Serialize};

use crate::config::Millis;

/// A distribution of durations, written `{ dist = "exponential", mean_s = 180 }` and so on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Never happens (patience: the customer never hangs up).
    #[serde(rename = "none")]
    Never,
    /// Always `s` seconds.
    Fixed { s: f64 },
    /// Exponential with mean `mean_s` seconds.
    Exponential { mean_s: f64 },
    /// Lognormal with the given mean and standard deviation (seconds) of the duration itself.
    Lognormal { mean_s: f64, sd_s: f64 },
    /// One of these observed durations (ms), each equally likely. Built by the replay from a
    /// journal (answer delays actually seen); never written in a scenario file.
    #[serde(skip)]
    Empirical { samples_ms: Vec<Millis> },
}

impl Dist {
    /// Always zero (the default answer delay).
    pub fn zero() -> Dist {
        Dist::Fixed { s: 0.0 }
    }

    /// Whether the parameters make sense; `Err` says why not.
    pub fn check(&self, allow_never: bool) -> Result<(), String> {
        // At most a year, like every time in a scenario (`scenario::MAX_DURATION_S`).
        let max = crate::sim::scenario::MAX_DURATION_S;
        let ok = |x: f64| x.is_finite() && x >= 0.0 && x <= max;
        match *self {
            Dist::Never if allow_never => Ok(()),
            Dist::Never => Err(
                "`none` (never happens) is not allowed here: this duration must end; use \
                 `fixed`, `exponential` or `lognormal` (`none` is for patience and wrap-up)"
                    .into(),
            ),
            Dist::Fixed { s } if ok(s) => Ok(()),
            Dist::Fixed { s } => Err(format!(
                "s must be between 0 and {max} seconds (one year), got {s}"
            )),
            Dist::Exponential { mean_s } if ok(mean_s) && mean_s > 0.0 => Ok(()),
            Dist::Exponential { mean_s } => Err(format!(
                "mean_s must be > 0 and at most {max} (one year), got {mean_s}"
            )),
            Dist::Lognormal { mean_s, sd_s } if ok(mean_s) && mean_s > 0.0 && ok(sd_s) => Ok(()),
            Dist::Lognormal { mean_s, sd_s } => Err(format!(
                "mean_s must be > 0 and sd_s ≥ 0, both at most {max} (one year), got mean_s \
                 {mean_s}, sd_s {sd_s}"
            )),
            Dist::Empirical { ref samples_ms } if !samples_ms.is_empty() => Ok(()),
            Dist::Empirical { .. } => Err("no observed samples".into()),
        }
    }

    /// The mean in seconds (`None` for `none`).
    pub fn mean_s(&self) -> Option<f64> {
        match *self {
            Dist::Never => None,
            Dist::Fixed { s } => Some(s),
            Dist::Exponential { mean_s } | Dist::Lognormal { mean_s, .. } => Some(mean_s),
            Dist::Empirical { ref samples_ms } => (!samples_ms.is_empty()).then(|| {
                samples_ms.iter().map(|&ms| ms as f64).sum::<f64>()
                    / samples_ms.len() as f64
                    / 1000.0
            }),
        }
    }

    /// One draw in whole milliseconds (rounded); `None` for `none`. Assumes `check` passed.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Millis> {
        let secs = match *self {
            Dist::Never => return None,
            Dist::Empirical { ref samples_ms } => {
                if samples_ms.is_empty() {
                    return Some(0);
                }
                return Some(samples_ms[rng.gen_range(0..samples_ms.len())]);
            }
            Dist::Fixed { s } => s,
            Dist::Exponential { mean_s } => match Exp::new(1.0 / mean_s) {
                Ok(d) => d.sample(rng),
                Err(_) => mean_s,
            },
            Dist::Lognormal { mean_s, sd_s } => {
                // Moments of the duration → parameters of the underlying normal.
                let sigma2 = (1.0 + (sd_s / mean_s).powi(2)).ln();
                let mu = mean_s.ln() - sigma2 / 2.0;
                match LogNormal::new(mu, sigma2.sqrt()) {
                    Ok(d) => d.sample(rng),
                    Err(_) => mean_s,
                }
            }
        };
        Some((secs * 1000.0).round().max(0.0) as Millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn mean_and_sd(d: &Dist, n: usize) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let xs: Vec<f64> = (0..n)
            .map(|_| d.sample(&mut rng).unwrap_or(0) as f64 / 1000.0)
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn a_lognormal_handle_time_has_the_mean_and_spread_it_was_given() {
        let (mean, sd) = mean_and_sd(
            &Dist::Lognormal {
                mean_s: 300.0,
                sd_s: 120.0,
            },
            200_000,
        );
        assert!((mean - 300.0).abs() < 3.0, "mean {mean}");
        assert!((sd - 120.0).abs() < 4.0, "sd {sd}");
    }

    #[test]
    fn an_exponential_patience_has_the_mean_it_was_given() {
        let (mean, sd) = mean_and_sd(&Dist::Exponential { mean_s: 90.0 }, 200_000);
        assert!((mean - 90.0).abs() < 1.0, "mean {mean}");
        assert!((sd - 90.0).abs() < 1.5, "sd {sd}");
    }

    #[test]
    fn no_patience_means_the_customer_never_hangs_up() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(Dist::Never.sample(&mut rng), None);
        assert_eq!(Dist::Fixed { s: 2.5 }.sample(&mut rng), Some(2_500));
    }

    #[test]
    fn an_empirical_distribution_only_gives_the_observed_values_in_their_proportions() {
        let d = Dist::Empirical {
            samples_ms: vec![1_000, 1_000, 1_000, 4_000],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let draws: Vec<Millis> = (0..40_000).filter_map(|_| d.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&ms| ms == 1_000 || ms == 4_000));
        let long = draws.iter().filter(|&&ms| ms == 4_000).count() as f64 / 40_000.0;
        assert!((long - 0.25).abs() < 0.01, "share of 4 s draws {long}");
        assert_eq!(d.mean_s(), Some(1.75));
        assert!(Dist::Empirical { samples_ms: vec![] }.check(false).is_err());
    }

    #[test]
    fn nonsense_parameters_are_refused_with_the_reason() {
        assert!(Dist::Exponential { mean_s: 0.0 }
            .check(false)
            .unwrap_err()
            .contains("mean_s"));
        assert!(Dist::Never.check(false).is_err());
        assert!(Dist::Never.check(true).is_ok());
    }
}
