//! Reading `tierline_timer_lateness_seconds` from the daemon's Prometheus text.
//!
//! Owns the parsing and the quantile estimate only (the same linear interpolation inside a bucket
//! as PromQL's `histogram_quantile`); fetching is the caller's job. Given the page from before the
//! measured phase and the one after it, the lateness is that of the timers fired in between (the
//! bucket counts' difference, as PromQL's `increase` would give), not the daemon's whole life,
//! which includes the setup and whatever ran before. A summary rendering (with `quantile` labels)
//! is read too, since the exporter renders histograms without buckets that way; its quantiles
//! cannot be differenced, so they are the daemon's whole life.

use super::report::{LatenessScope, TimerLateness};

/// The metric the daemon exports for timer lateness.
pub const TIMER_LATENESS: &str = "tierline_timer_lateness_seconds";

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

fn value(line: &str) -> Option<f64> {
    line.rsplit(' ').next()?.trim().parse().ok()
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// The `q` quantile (0..=1) of a cumulative histogram given as (upper bound, count ≤ bound),
/// sorted by bound and ending with `+Inf`. Seconds.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(upper, count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                // Beyond the last finite bucket: its bound is the best we know.
                return Some(lower);
            }
            let in_bucket = count - below;
            if in_bucket <= 0.0 {
                return Some(upper);
            }
            return Some(lower + (upper - lower) * (rank - below) / in_bucket);
        }
        lower = upper;
        below = count;
    }
    Some(lower)
}

/// The lateness histogram's cumulative buckets (upper bound in seconds, count), summed over
/// every label set and sorted by bound; `None` when the page has no buckets for it.
fn lateness_buckets(text: &str) -> Option<Vec<(f64, f64)>> {
    let bucket_prefix = format!("{TIMER_LATENESS}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&bucket_prefix)) {
        let (Some(le), Some(v)) = (label(line, "le").and_then(parse_bound), value(line)) else {
            continue;
        };
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some(entry) => entry.1 += v,
            None => buckets.push((le, v)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (!buckets.is_empty()).then_some(buckets)
}

/// p50, p99 and the highest bucket holding a sample, from cumulative buckets.
fn from_buckets(buckets: &[(f64, f64)], scope: LatenessScope) -> TimerLateness {
    let count = buckets.last().map_or(0.0, |b| b.1);
    let max_bucket = buckets
        .iter()
        .scan(0.0, |prev, &(bound, c)| {
            let grew = c > *prev;
            *prev = c;
            Some((bound, grew))
        })
        .filter(|(_, grew)| *grew)
        .map(|(bound, _)| bound)
        .last();
    TimerLateness {
        count: count as u64,
        p50_ms: bucket_quantile(0.5, buckets).unwrap_or(0.0) * 1000.0,
        p99_ms: bucket_quantile(0.99, buckets).unwrap_or(0.0) * 1000.0,
        max_bucket_ms: max_bucket.filter(|b| b.is_finite()).map(|b| b * 1000.0),
        scope,
    }
}

/// The lateness of the timers fired between two pages of the same daemon: each bucket's count
/// after minus its count before. When that cannot be done (no buckets before, a summary
/// rendering, or a count that went down: the daemon restarted in between), the page after
/// alone, marked as the daemon's whole life.
pub fn timer_lateness_between(before: Option<&str>, after: &str) -> Option<TimerLateness> {
    let (Some(earlier), Some(later)) = (before.map(lateness_buckets), lateness_buckets(after))
    else {
        return timer_lateness(after);
    };
    let earlier = earlier.unwrap_or_default();
    let mut delta = Vec::with_capacity(later.len());
    for &(bound, count) in &later {
        let was = earlier
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0.0, |e| e.1);
        if count < was {
            return timer_lateness(after);
        }
        delta.push((bound, count - was));
    }
    Some(from_buckets(&delta, LatenessScope::Run))
}

/// Timer lateness from one Prometheus text page (the daemon's whole life), summed over every
/// label set; `None` when the metric is absent.
pub fn timer_lateness(text: &str) -> Option<TimerLateness> {
    if let Some(buckets) = lateness_buckets(text) {
        return Some(from_buckets(&buckets, LatenessScope::DaemonLifetime));
    }
    let mut quantiles: Vec<(f64, f64)> = Vec::new();
    let mut summary_count = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with(&format!("{TIMER_LATENESS}{{"))
            || line.starts_with(&format!("{TIMER_LATENESS} "))
        {
            if let (Some(q), Some(v)) = (
                label(line, "quantile").and_then(|q| q.parse::<f64>().ok()),
                value(line),
            ) {
                // Several label sets: keep the worst of each quantile.
                match quantiles.iter_mut().find(|(b, _)| *b == q) {
                    Some(entry) => entry.1 = entry.1.max(v),
                    None => quantiles.push((q, v)),
                }
            }
        } else if line.starts_with(&format!("{TIMER_LATENESS}_count")) {
            summary_count += value(line).unwrap_or(0.0);
        }
    }
    if !quantiles.is_empty() {
        let at = |q: f64| {
            quantiles
                .iter()
                .find(|(k, _)| (*k - q).abs() < 1e-9)
                .map_or(0.0, |(_, v)| *v * 1000.0)
        };
        return Some(TimerLateness {
            count: summary_count as u64,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_bucket_ms: None,
            scope: LatenessScope::DaemonLifetime,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_interpolates_inside_the_bucket_that_holds_it() {
        // 100 timers: 90 under 1 ms, 9 in (1 ms, 5 ms], 1 in (5 ms, 10 ms].
        let text = "\
# TYPE tierline_timer_lateness_seconds histogram
tierline_timer_lateness_seconds_bucket{kind=\"ladder\",le=\"0.001\"} 60
tierline_timer_lateness_seconds_bucket{kind=\"offer\",le=\"0.001\"} 30
tierline_timer_lateness_seconds_bucket{kind=\"ladder\",le=\"0.005\"} 66
tierline_timer_lateness_seconds_bucket{kind=\"offer\",le=\"0.005\"} 33
tierline_timer_lateness_seconds_bucket{kind=\"ladder\",le=\"0.01\"} 67
tierline_timer_lateness_seconds_bucket{kind=\"offer\",le=\"0.01\"} 33
tierline_timer_lateness_seconds_bucket{kind=\"ladder\",le=\"+Inf\"} 67
tierline_timer_lateness_seconds_bucket{kind=\"offer\",le=\"+Inf\"} 33
tierline_timer_lateness_seconds_sum 0.2
tierline_timer_lateness_seconds_count 100
";
        let t = timer_lateness(text).unwrap();
        assert_eq!(t.count, 100);
        // Rank 99 is the 9th of 9 in (1, 5] ms: 1 + 4 × 9/9 = 5 ms.
        assert!((t.p99_ms - 5.0).abs() < 1e-9, "{t:?}");
        // Rank 50 is inside the first bucket: 0 + 1 × 50/90 ms.
        assert!((t.p50_ms - 50.0 / 90.0).abs() < 1e-9, "{t:?}");
        assert_eq!(t.max_bucket_ms, Some(10.0));
    }

    /// A page with `fast` timers ≤ 1 ms, `mid` in (1, 5] ms and `slow` in (5, 10] ms.
    fn page(fast: u64, mid: u64, slow: u64) -> String {
        format!(
            "# TYPE tierline_timer_lateness_seconds histogram\n\
             tierline_timer_lateness_seconds_bucket{{le=\"0.001\"}} {fast}\n\
             tierline_timer_lateness_seconds_bucket{{le=\"0.005\"}} {}\n\
             tierline_timer_lateness_seconds_bucket{{le=\"0.01\"}} {}\n\
             tierline_timer_lateness_seconds_bucket{{le=\"+Inf\"}} {}\n\
             tierline_timer_lateness_seconds_count {}\n",
            fast + mid,
            fast + mid + slow,
            fast + mid + slow,
            fast + mid + slow,
        )
    }

    #[test]
    fn the_lateness_is_that_of_the_timers_fired_between_the_two_pages() {
        // 10,000 punctual timers before the run; during it 90 ≤ 1 ms, 9 in (1, 5], 1 in (5, 10].
        let before = page(10_000, 0, 0);
        let after = page(10_090, 9, 1);
        let t = timer_lateness_between(Some(&before), &after).unwrap();
        assert_eq!(t.scope, LatenessScope::Run);
        assert_eq!(t.count, 100);
        assert!((t.p99_ms - 5.0).abs() < 1e-9, "{t:?}");
        assert_eq!(t.max_bucket_ms, Some(10.0));
        // The whole life would hide them: its p99 is inside the first bucket.
        let whole = timer_lateness(&after).unwrap();
        assert_eq!(whole.scope, LatenessScope::DaemonLifetime);
        assert!(whole.p99_ms <= 1.0, "{whole:?}");
    }

    #[test]
    fn a_daemon_that_had_fired_no_timer_before_the_run_counts_from_zero() {
        // The exporter renders no histogram until its first sample.
        let t = timer_lateness_between(Some("tierline_offers_total 0\n"), &page(90, 9, 1)).unwrap();
        assert_eq!(t.scope, LatenessScope::Run);
        assert_eq!(t.count, 100);
        assert!((t.p99_ms - 5.0).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn without_a_page_from_before_or_after_a_restart_it_is_the_whole_life() {
        let after = page(90, 9, 1);
        let whole = timer_lateness(&after);
        assert_eq!(timer_lateness_between(None, &after), whole);
        // Fewer timers after than before: the daemon restarted in between.
        let restarted = timer_lateness_between(Some(&page(10_000, 0, 0)), &after);
        assert_eq!(restarted, whole);
        assert_eq!(
            restarted.map(|t| t.scope),
            Some(LatenessScope::DaemonLifetime)
        );
    }

    #[test]
    fn a_summary_rendering_is_read_from_its_quantiles() {
        let text = "\
tierline_timer_lateness_seconds{quantile=\"0.5\"} 0.0004
tierline_timer_lateness_seconds{quantile=\"0.99\"} 0.0021
tierline_timer_lateness_seconds_sum 0.3
tierline_timer_lateness_seconds_count 250
";
        let t = timer_lateness(text).unwrap();
        assert_eq!(t.count, 250);
        assert!((t.p99_ms - 2.1).abs() < 1e-9);
        assert!((t.p50_ms - 0.4).abs() < 1e-9);
    }

    #[test]
    fn a_page_without_the_metric_gives_none() {
        assert_eq!(timer_lateness("tierline_offers_total 3\n"), None);
    }

    #[test]
    fn a_quantile_past_the_last_finite_bucket_reports_that_bound() {
        let buckets = [(0.001, 1.0), (0.005, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &buckets), Some(0.005));
    }
}
