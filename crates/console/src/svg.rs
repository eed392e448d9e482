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
