//! Inline SVG charts (no script, so they pass the CSP).

use maud::{Markup, html};

/// Renders a bar histogram of `counts`, labelling the first, middle and last bucket.
pub fn histogram(counts: &[u64], labels: [&str; 3], title: &str) -> Markup {
    let (w, h, pad) = (1200.0_f64, 110.0_f64, 24.0_f64);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = counts.len().max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    html! {
        svg class="histogram" viewBox=(format!("0 0 {w} {}", h + 20.0)) role="img" aria-label=(title) {
            title { (title) }
            line x1=(pad) y1=(h) x2=(w - pad) y2=(h) class="axis" {}
            text x=(pad) y="12" class="label" { "max " (max as u64) }
            @for (i, c) in counts.iter().enumerate() {
                @let bh = (*c as f64 / max) * (h - 20.0);
                rect x=(format!("{:.1}", pad + i as f64 * bw + 0.5)) y=(format!("{:.1}", h - bh)) width=(format!("{:.1}", (bw - 1.0).max(0.5))) height=(format!("{:.1}", bh)) class="bar" {
                    title { (c) }
                }
            }
            text x=(pad) y=(h + 16.0) class="label" { (labels[0]) }
            text x=(w / 2.0) y=(h + 16.0) class="label" text-anchor="middle" { (labels[1]) }
            text x=(w - pad) y=(h + 16.0) class="label" text-anchor="end" { (labels[2]) }
        }
    }
}

/// Renders response times over `[from, to)` as a line with its scale (0, half, the
/// highest), with failed checks as red marks along the bottom; hovering a point or a
/// mark shows its time and value (SVG titles, no script). `points` are (time ms,
/// response ms, failed).
pub fn response_chart(points: &[(i64, u32, bool)], from: i64, to: i64, labels: [&str; 3], title: &str) -> Markup {
    let (w, h, pad) = (1200.0_f64, 160.0_f64, 40.0_f64);
    let span = (to - from).max(1) as f64;
    let max = points.iter().filter(|p| !p.2).map(|p| p.1).max().unwrap_or(0).max(10) as f64;
    let x = |t: i64| pad + (t - from) as f64 / span * (w - 2.0 * pad);
    let y = |ms: u32| h - 10.0 - (f64::from(ms) / max).min(1.0) * (h - 30.0);
    let line: Vec<String> = points.iter().filter(|p| !p.2).map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
    html! {
        svg class="rtchart" viewBox=(format!("0 0 {w} {}", h + 20.0)) role="img" aria-label=(title) {
            title { (title) }
            line x1=(pad) y1=(h - 10.0) x2=(w - pad) y2=(h - 10.0) class="axis" {}
            text x="2" y="14" class="label" { (max as u64) " ms" }
            line x1=(pad) y1=(y((max / 2.0) as u32)) x2=(w - pad) y2=(y((max / 2.0) as u32)) class="grid" {}
            text x="2" y=(y((max / 2.0) as u32) + 4.0) class="label" { ((max / 2.0) as u64) " ms" }
            text x="2" y=(h - 12.0) class="label" { "0" }
            @if !line.is_empty() { polyline points=(line.join(" ")) class="rt" {} }
            // Hover targets: at most about 300, evenly taken.
            @let ok: Vec<&(i64, u32, bool)> = points.iter().filter(|p| !p.2).collect();
            @for p in ok.iter().step_by(ok.len().div_ceil(300).max(1)) {
                circle cx=(format!("{:.1}", x(p.0))) cy=(format!("{:.1}", y(p.1))) r="4" class="pt" { title { (crate::layout::when(p.0)) " — " (p.1) " ms" } }
            }
            @for p in points.iter().filter(|p| p.2) {
                rect x=(format!("{:.1}", x(p.0) - 1.5)) y=(h - 8.0) width="3" height="8" class="down" { title { (crate::layout::when(p.0)) } }
            }
            text x=(pad) y=(h + 16.0) class="label" { (labels[0]) }
            text x=(w / 2.0) y=(h + 16.0) class="label" text-anchor="middle" { (labels[1]) }
            text x=(w - pad) y=(h + 16.0) class="label" text-anchor="end" { (labels[2]) }
        }
    }
}
