//! The wallboard's colours say what METRICS.md's targets say: a KPI exactly at its target meets
//! it ("ASA ≤ 30 s", "complaint share ≤ 1 %", "FCR ≥ 90 %", "satisfaction ≥ 85 %"), so its tile
//! is green there, and red just past it. Grafana gives a value the colour of the last threshold
//! step whose value is ≤ it.

use serde_json::Value;

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/dashboards/tierline-wallboard.json"
    );
    let text = std::fs::read_to_string(path).expect("the wallboard is in the repository");
    serde_json::from_str(&text).expect("the wallboard is JSON")
}

fn panels(d: &Value) -> &Vec<Value> {
    d["panels"].as_array().expect("panels")
}

/// The colour Grafana gives `value` on the panel titled `title`.
fn colour(dashboard: &Value, title: &str, value: f64) -> String {
    let panel = panels(dashboard)
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{title:?} has no threshold steps"));
    let mut colour = String::new();
    for step in steps {
        let reached = match step["value"].as_f64() {
            None => true, // the base colour
            Some(v) => value >= v,
        };
        if reached {
            colour = step["color"].as_str().expect("colour").to_string();
        }
    }
    colour
}

#[test]
fn a_kpi_exactly_at_its_target_is_green_and_just_past_it_red() {
    let d = dashboard();
    // (panel, target, a value just on the wrong side of it)
    let cases = [
        ("Response: ASA (target <= 30 s)", 30.0, 30.001),
        ("Complaint share (target <= 1 %)", 0.01, 0.0101),
        ("First-contact resolution (target >= 90 %)", 0.9, 0.899),
        ("Satisfaction (target >= 85 %)", 0.85, 0.849),
        ("ASA (selected range)", 30.0, 30.001),
    ];
    let mut wrong = Vec::new();
    for (title, target, past) in cases {
        let (at, beyond) = (colour(&d, title, target), colour(&d, title, past));
        if (at.as_str(), beyond.as_str()) != ("green", "red") {
            wrong.push(format!("{title}: {at} at {target}, {beyond} at {past}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_first_row_counts_the_unanswered_interactions_of_every_channel() {
    let d = dashboard();
    let tiles = [
        ("Calls waiting", "voice"),
        ("Chats waiting", "chat"),
        ("Emails waiting", "email"),
        ("Callbacks waiting", "callback"),
    ];
    for (title, channel) in tiles {
        let panel = panels(&d)
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        let expr = panel["targets"][0]["expr"].as_str().expect("expr");
        assert!(
            expr.contains("tierline_queue_waiting|tierline_queue_ringing")
                && expr.contains(&format!("channel=\"{channel}\"")),
            "{title}: {expr}"
        );
        assert_eq!(panel["gridPos"]["y"], 1, "{title} is in the first row");
    }
}

#[test]
fn no_two_panels_overlap_and_none_is_wider_than_the_grid() {
    let d = dashboard();
    let rect = |p: &Value| {
        let g = &p["gridPos"];
        let n = |k: &str| {
            g[k].as_i64()
                .unwrap_or_else(|| panic!("{} has no {k}", p["title"]))
        };
        (n("x"), n("y"), n("w"), n("h"))
    };
    let all: Vec<(String, (i64, i64, i64, i64))> = panels(&d)
        .iter()
        .map(|p| (p["title"].as_str().unwrap_or("").to_string(), rect(p)))
        .collect();
    let mut wrong = Vec::new();
    for (i, (a, (ax, ay, aw, ah))) in all.iter().enumerate() {
        if ax + aw > 24 {
            wrong.push(format!("{a} ends at column {}", ax + aw));
        }
        for (b, (bx, by, bw, bh)) in &all[i + 1..] {
            if ax < &(bx + bw) && bx < &(ax + aw) && ay < &(by + bh) && by < &(ay + ah) {
                wrong.push(format!("{a} overlaps {b}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
