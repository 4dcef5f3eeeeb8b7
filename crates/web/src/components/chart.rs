use keysync_shared::stats::HourlyCount;
use leptos::prelude::*;

use crate::format;

// Integer coordinates: formatting floats would pull float printing into the bundle.
const WIDTH: i64 = 720;
const HEIGHT: i64 = 200;
const LEFT: i64 = 40;
const BOTTOM: i64 = 24;
const TOP: i64 = 12;
/// Each hour's slot is this wide; the bar fills 7/10 of it.
const SLOT: i64 = (WIDTH - LEFT) / 24;

/// Validations per hour over the last 24 hours: an inline SVG bar chart (no chart library).
#[component]
pub fn ValidationsChart(#[prop(into)] hours: Signal<Option<Vec<HourlyCount>>>) -> impl IntoView {
    let bars = move || {
        let hours = hours.get().unwrap_or_default();
        let max = hours.iter().map(|h| h.count).max().unwrap_or(0).max(1);
        let plot = HEIGHT - BOTTOM - TOP;
        hours
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let height = (h.count * plot / max).max(if h.count > 0 { 2 } else { 0 });
                let x = LEFT + i as i64 * SLOT + SLOT * 15 / 100;
                let y = TOP + plot - height;
                let label = format::hour(&h.hour);
                let tip = format!("{label} UTC: {} validations", format::count(h.count));
                let tick = (i % 6 == 0).then(|| {
                    view! {
                        <text x=x + SLOT * 35 / 100 y=HEIGHT - 6 class="chart-tick" text-anchor="middle">
                            {label.clone()}
                        </text>
                    }
                });
                view! {
                    <g>
                        <rect
                            class="chart-bar"
                            x=x
                            y=y
                            width=SLOT * 7 / 10
                            height=height
                            rx="2"
                            data-count=h.count
                        >
                            <title>{tip}</title>
                        </rect>
                        {tick}
                    </g>
                }
            })
            .collect_view()
    };
    let max_label = move || {
        hours
            .with(|h| h.as_ref().and_then(|h| h.iter().map(|h| h.count).max()))
            .map(format::count)
            .unwrap_or_else(|| "0".into())
    };
    let total = move || hours.with(|h| h.as_ref().map(|h| h.iter().map(|h| h.count).sum::<i64>()));
    let summary = move || match total() {
        Some(t) => format!("{} validations in the last 24 hours", format::count(t)),
        None => "Loading validations".into(),
    };
    view! {
        <figure class="chart" data-testid="validations-chart">
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=summary
                preserveAspectRatio="none"
            >
                <line class="chart-axis" x1=LEFT y1=TOP x2=LEFT y2=HEIGHT - BOTTOM />
                <line class="chart-axis" x1=LEFT y1=HEIGHT - BOTTOM x2=WIDTH y2=HEIGHT - BOTTOM />
                <text class="chart-tick" x=LEFT - 6 y=TOP + 8 text-anchor="end">
                    {max_label}
                </text>
                <text class="chart-tick" x=LEFT - 6 y=HEIGHT - BOTTOM text-anchor="end">
                    "0"
                </text>
                {bars}
            </svg>
            <figcaption class="chart-caption">
                {move || match total() {
                    Some(0) => "No validations in the last 24 hours.".to_string(),
                    _ => summary(),
                }}
            </figcaption>
        </figure>
    }
}
