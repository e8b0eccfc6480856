//! The footprint plot: resident memory and disk along the load, one line
//! per engine, written by hand as SVG from the footprint example's
//! `SAMPLE <engine> <docs> <rss_bytes> <disk_bytes>` lines (no plotting
//! dependency).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Colours of the engines' lines, in the report's engine order.
const COLOURS: [(&str, &str); 4] =
    [("aurora", "#d62728"), ("sled", "#1f77b4"), ("redb", "#2ca02c"), ("sqlite", "#9467bd")];

/// (docs, resident MiB, disk MiB) samples per engine.
type Samples = BTreeMap<String, Vec<(f64, f64, f64)>>;

fn samples(output: &str) -> Samples {
    let mut out = Samples::new();
    for line in output.lines().filter_map(|l| l.strip_prefix("SAMPLE ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(engine), Some(docs), Some(rss), Some(disk)) = (f.first(), num(1), num(2), num(3)) {
            out.entry((*engine).to_string()).or_default().push((docs, rss / 1048576.0, disk / 1048576.0));
        }
    }
    out
}

/// A round axis maximum at or above `v`: four ticks of 1, 2, 2.5 or 5
/// times a power of ten.
fn nice(v: f64) -> f64 {
    let tick = v.max(1.0) / 4.0;
    let power = 10f64.powf(tick.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= tick).unwrap_or(10.0 * power);
    step * 4.0
}

/// One panel: `value` of each sample against documents, at `(x0, y0)`.
fn panel(svg: &mut String, data: &Samples, title: &str, x0: f64, value: fn(&(f64, f64, f64)) -> f64) {
    let (w, h, y0) = (380.0, 260.0, 40.0);
    let max_docs = nice(data.values().flatten().map(|s| s.0).fold(0.0, f64::max));
    let max_v = nice(data.values().flatten().map(value).fold(0.0, f64::max));
    let px = |docs: f64| x0 + docs / max_docs * w;
    let py = |v: f64| y0 + h - v / max_v * h;
    let _ = writeln!(svg, r#"<text x="{}" y="24" font-size="14" text-anchor="middle">{title}</text>"#, x0 + w / 2.0);
    let _ = writeln!(svg, r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##);
    for i in 0..=4 {
        let v = max_v * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" font-size="11" text-anchor="end">{v:.0}</text><line x1="{x0}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/>"##,
            x0 - 4.0,
            py(v) + 4.0,
            x0 + w,
            y = py(v)
        );
        let d = max_docs * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{:.0}k</text>"#,
            px(d),
            y0 + h + 16.0,
            d / 1000.0
        );
    }
    for (engine, colour) in COLOURS {
        let Some(points) = data.get(engine) else { continue };
        let path: Vec<String> = points.iter().map(|s| format!("{:.1},{:.1}", px(s.0), py(value(s)))).collect();
        let _ =
            writeln!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, path.join(" "));
    }
}

/// The SVG of both panels, or `None` without samples.
pub fn svg(output: &str) -> Option<String> {
    let data = samples(output);
    if data.is_empty() {
        return None;
    }
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="360" font-family="sans-serif">
<rect width="900" height="360" fill="white"/>
"#,
    );
    panel(&mut svg, &data, "resident memory (MiB)", 50.0, |s| s.1);
    panel(&mut svg, &data, "disk (MiB, allocated)", 500.0, |s| s.2);
    for (i, (engine, colour)) in COLOURS.iter().enumerate() {
        let x = 250.0 + 110.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" x2="{}" y1="338" y2="338" stroke="{colour}" stroke-width="3"/><text x="{}" y="342" font-size="12">{engine}</text>"#,
            x + 20.0,
            x + 25.0
        );
    }
    let _ = writeln!(svg, r#"<text x="450" y="356" font-size="11" text-anchor="middle">documents inserted</text>"#);
    svg.push_str("</svg>\n");
    Some(svg)
}

#[cfg(test)]
mod tests {
    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(super::nice(84.0), 100.0);
        assert_eq!(super::nice(161.0), 200.0);
        assert_eq!(super::nice(9.0), 10.0);
        assert_eq!(super::nice(1000.0), 1000.0);
    }

    #[test]
    fn samples_become_one_line_per_engine_in_both_panels() {
        let out = "SAMPLE aurora 1000 1048576 2097152\nSAMPLE aurora 2000 2097152 4194304\nSAMPLE sqlite 1000 1048576 1048576\nFOOTPRINT x\n";
        let svg = super::svg(out).unwrap_or_default();
        assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
        assert!(super::svg("FOOTPRINT only\n").is_none());
    }
}
