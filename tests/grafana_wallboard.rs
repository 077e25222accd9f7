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

/// The colour Grafana gives `value` on the panel titled `title`.
fn colour(dashboard: &Value, title: &str, value: f64) -> String {
    let panel = dashboard["panels"]
        .as_array()
        .expect("panels")
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
