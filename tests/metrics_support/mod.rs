//! Helpers shared by the `metrics_*` test targets.

#![allow(dead_code)]

pub mod day;

/// The value of the one sample named `name` with exactly `labels` in Prometheus text `text`.
/// Panics (test failure) with the candidates when there is no such sample.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut candidates = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let (n, rest) = match series.find('{') {
            Some(i) => (&series[..i], &series[i + 1..series.len() - 1]),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        candidates.push(series.to_string());
        let mut found: Vec<(String, String)> = rest
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').expect("label has =");
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        found.sort();
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        if found == want {
            return value.parse().expect("sample value is a number");
        }
    }
    panic!("no sample {name}{labels:?}; series of that name: {candidates:#?}");
}

/// Whether any sample line of `text` has metric name `name`.
pub fn has_series(text: &str, name: &str) -> bool {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
}
