//! Reading `tierline_timer_lateness_seconds` from the daemon's Prometheus text after a run.
//!
//! Owns the parsing and the quantile estimate only (the same linear interpolation inside a bucket
//! as PromQL's `histogram_quantile`); fetching is the caller's job. A summary rendering (with
//! `quantile` labels) is read too, since the exporter renders histograms without buckets that way.

use super::report::TimerLateness;

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

/// Timer lateness from a Prometheus text page, summed over every label set; `None` when the
/// metric is absent.
pub fn timer_lateness(text: &str) -> Option<TimerLateness> {
    let bucket_prefix = format!("{TIMER_LATENESS}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let mut quantiles: Vec<(f64, f64)> = Vec::new();
    let mut summary_count = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with(&bucket_prefix) {
            let (Some(le), Some(v)) = (label(line, "le").and_then(parse_bound), value(line)) else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some(entry) => entry.1 += v,
                None => buckets.push((le, v)),
            }
        } else if line.starts_with(&format!("{TIMER_LATENESS}{{"))
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
    if !buckets.is_empty() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
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
        return Some(TimerLateness {
            count: count as u64,
            p50_ms: bucket_quantile(0.5, &buckets).unwrap_or(0.0) * 1000.0,
            p99_ms: bucket_quantile(0.99, &buckets).unwrap_or(0.0) * 1000.0,
            max_bucket_ms: max_bucket.filter(|b| b.is_finite()).map(|b| b * 1000.0),
        });
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
