//! A latency percentile plot as SVG: latency (µs) against percentile on
//! the usual log scale (50%, 90%, 99%, 99.9%, 99.99% evenly spaced).

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::report::Report;

const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// The x axis ends at 99.999%.
const X_MAX: f64 = 5.0;

pub fn svg(report: &Report, hist: &Histogram<u64>) -> String {
    let points: Vec<(f64, f64)> = (0..=500)
        .map(|i| {
            let x = X_MAX * i as f64 / 500.0;
            let q = 1.0 - 10f64.powf(-x);
            (x, hist.value_at_quantile(q) as f64)
        })
        .collect();
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let sx = |x: f64| LEFT + x / X_MAX * (W - LEFT - RIGHT);
    let sy = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let title = format!(
        "{} {:?} R{} {}B — p50 {} µs, p99 {} µs, {:.0} msgs/s",
        report.label,
        report.mode,
        report.replicas,
        report.size,
        report.latency_us.p50,
        report.latency_us.p99,
        report.msgs_per_sec
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="14">{title}</text>"#
    );
    for (x, label) in [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
    ] {
        let px = sx(x);
        let _ = writeln!(
            s,
            r##"<line x1="{px}" y1="{TOP}" x2="{px}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{label}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0
        );
    }
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        let py = sy(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{v:.0}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">latency (µs)</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 16.0,
        H / 2.0,
        H / 2.0
    );
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn plots_a_polyline_over_the_percentiles() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 3)
            .unwrap_or_else(|e| panic!("{e}"));
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap_or_else(|e| panic!("{e}"));
        }
        let report = crate::report::tests::sample(&h);
        let svg = super::svg(&report, &h);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline") && svg.contains("99.9%"));
    }
}
