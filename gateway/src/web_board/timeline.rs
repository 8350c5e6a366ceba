//! The geometry of a participant's timeline: status levels as a step plot with trend marks
//! and board stays, and the plan's interventions as bars by life area, on one time axis.
//! Pure: the page's template draws what this computes.

use chrono::{DateTime, Duration, Utc};

/// The drawing's width in SVG units.
pub const WIDTH: f64 = 960.0;
/// Left margin for the level and life-area labels.
const LEFT: f64 = 190.0;
/// Right margin.
const RIGHT: f64 = 20.0;
/// Height of one status level's band.
const LEVEL_HEIGHT: f64 = 36.0;
/// Height of one life area's lane.
const LANE_HEIGHT: f64 = 30.0;
/// Top margin above the status plot.
const TOP: f64 = 16.0;
/// Space between the status plot and the lanes (the time axis sits here).
const GAP: f64 = 44.0;

/// A status assessment on the timeline.
#[derive(Debug, Clone)]
pub struct Point {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The level (1 is the most acute).
    pub level: u32,
    /// "worse", "same", "better" or "" (unknown).
    pub trend: &'static str,
}

/// An intervention of the plan.
#[derive(Debug, Clone)]
pub struct Intervention {
    /// The life area's label (the lane).
    pub area: String,
    /// What it is.
    pub label: String,
    /// Its status's CSS name: proposed, applied, granted, denied, started, paused, ended.
    pub status: &'static str,
    /// From (the plan's creation when the plan names no start).
    pub start: DateTime<Utc>,
    /// Until (now when open).
    pub end: Option<DateTime<Utc>>,
}

/// A horizontal step of the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Start and end on the x axis.
    pub x1: f64,
    /// End.
    pub x2: f64,
    /// Height of the level.
    pub y: f64,
    /// The level.
    pub level: u32,
}

/// A vertical riser between two steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Riser {
    /// Where.
    pub x: f64,
    /// From.
    pub y1: f64,
    /// To.
    pub y2: f64,
}

/// A trend mark at the start of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Where.
    pub x: f64,
    /// Height.
    pub y: f64,
    /// The glyph: ▲ worse, ▼ better, ● same.
    pub glyph: &'static str,
    /// CSS name of the trend.
    pub trend: &'static str,
}

/// A bar: a board stay (behind the plot) or an intervention (in its lane).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// CSS name of its status.
    pub status: &'static str,
    /// Its text (a `<title>`).
    pub title: String,
}

/// A label on the left or under the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Where.
    pub x: f64,
    /// Height.
    pub y: f64,
    /// What.
    pub text: String,
}

/// Everything the SVG shows.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Full height.
    pub height: f64,
    /// Bottom of the status plot (the time axis).
    pub axis_y: f64,
    /// Status steps, oldest first.
    pub steps: Vec<Step>,
    /// Risers between consecutive steps.
    pub risers: Vec<Riser>,
    /// Trend marks.
    pub marks: Vec<Mark>,
    /// Board stays.
    pub stays: Vec<Bar>,
    /// Intervention bars.
    pub bars: Vec<Bar>,
    /// Level names on the left.
    pub level_labels: Vec<Label>,
    /// Life areas on the left.
    pub lane_labels: Vec<Label>,
    /// Dates under the axis.
    pub ticks: Vec<Label>,
}

/// Lays out the timeline from `points` (oldest first), board `stays` (start, end), the
/// plan's `interventions` and the team's `levels` (level, meaning), up to `now`.
pub fn chart(
    points: &[Point],
    stays: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    interventions: &[Intervention],
    levels: &[(u32, String)],
    now: DateTime<Utc>,
) -> Chart {
    let first = points
        .iter()
        .map(|p| p.at)
        .chain(stays.iter().map(|s| s.0))
        .chain(interventions.iter().map(|i| i.start))
        .min()
        .unwrap_or(now - Duration::days(30))
        .min(now - Duration::days(1));
    let start = first - Duration::hours(12);
    let end = now + Duration::hours(12);
    let span = (end - start).num_seconds().max(1) as f64;
    let x = |at: DateTime<Utc>| {
        let offset = (at.clamp(start, end) - start).num_seconds() as f64;
        round(LEFT + offset / span * (WIDTH - LEFT - RIGHT))
    };
    let max_level = levels
        .iter()
        .map(|l| l.0)
        .chain(points.iter().map(|p| p.level))
        .max()
        .unwrap_or(3)
        .max(1);
    // Level 1, the most acute, at the top.
    let y = |level: u32| round(TOP + (f64::from(level.clamp(1, max_level)) - 0.5) * LEVEL_HEIGHT);
    let axis_y = TOP + f64::from(max_level) * LEVEL_HEIGHT;
    let mut chart = Chart {
        axis_y,
        ..Chart::default()
    };
    for level in 1..=max_level {
        let meaning = levels
            .iter()
            .find(|l| l.0 == level)
            .map(|l| format!("{level} {}", l.1))
            .unwrap_or_else(|| level.to_string());
        chart.level_labels.push(Label {
            x: LEFT - 8.0,
            y: y(level) + 4.0,
            text: meaning,
        });
    }
    for (n, point) in points.iter().enumerate() {
        let x1 = x(point.at);
        let x2 = points.get(n + 1).map_or_else(|| x(now), |next| x(next.at));
        chart.steps.push(Step {
            x1,
            x2,
            y: y(point.level),
            level: point.level,
        });
        if let Some(previous) = n.checked_sub(1).and_then(|p| points.get(p))
            && previous.level != point.level
        {
            chart.risers.push(Riser {
                x: x1,
                y1: y(previous.level),
                y2: y(point.level),
            });
        }
        let glyph = match point.trend {
            "worse" => "▲",
            "better" => "▼",
            _ => "●",
        };
        chart.marks.push(Mark {
            x: x1,
            y: y(point.level) - 7.0,
            glyph,
            trend: point.trend,
        });
    }
    for (from, until) in stays {
        let x1 = x(*from);
        let x2 = x(until.unwrap_or(now));
        chart.stays.push(Bar {
            x: x1,
            y: TOP,
            width: round((x2 - x1).max(1.0)),
            height: axis_y - TOP,
            status: if until.is_some() { "ended" } else { "open" },
            title: String::new(),
        });
    }
    let mut areas: Vec<&str> = Vec::new();
    for intervention in interventions {
        if !areas.contains(&intervention.area.as_str()) {
            areas.push(&intervention.area);
        }
    }
    let lanes_top = axis_y + GAP;
    for (n, area) in areas.iter().enumerate() {
        chart.lane_labels.push(Label {
            x: LEFT - 8.0,
            y: round(lanes_top + (n as f64 + 0.5) * LANE_HEIGHT + 4.0),
            text: (*area).to_owned(),
        });
    }
    for intervention in interventions {
        let lane = areas
            .iter()
            .position(|a| *a == intervention.area)
            .unwrap_or_default();
        let x1 = x(intervention.start);
        let x2 = x(intervention.end.unwrap_or(now));
        chart.bars.push(Bar {
            x: x1,
            y: round(lanes_top + lane as f64 * LANE_HEIGHT + 5.0),
            width: round((x2 - x1).max(3.0)),
            height: LANE_HEIGHT - 10.0,
            status: intervention.status,
            title: intervention.label.clone(),
        });
    }
    chart.height = lanes_top + areas.len().max(1) as f64 * LANE_HEIGHT + 8.0;
    let days = (end - start).num_days().max(1);
    let every = match days {
        0..=14 => 1,
        15..=60 => 7,
        61..=240 => 30,
        _ => 60,
    };
    let mut tick = start.date_naive().succ_opt().unwrap_or(start.date_naive());
    while let Some(at) = tick.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
        && at <= end
    {
        chart.ticks.push(Label {
            x: x(at),
            y: axis_y + 18.0,
            text: tick.format("%-d/%-m").to_string(),
        });
        tick += Duration::days(every);
    }
    chart
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::days(days_ago)
    }

    #[test]
    fn five_assessments_and_three_interventions_draw_five_steps_and_three_bars() {
        let now = Utc::now();
        let points: Vec<Point> = [(40, 1, "worse"), (30, 1, "same"), (20, 2, "better")]
            .iter()
            .chain(&[(10, 2, "same"), (5, 3, "better")])
            .map(|(d, level, trend)| Point {
                at: at(*d, now),
                level: *level,
                trend,
            })
            .collect();
        let interventions: Vec<Intervention> = ["Hälsa", "Boende", "Hälsa"]
            .iter()
            .map(|area| Intervention {
                area: (*area).into(),
                label: "insats".into(),
                status: "started",
                start: at(35, now),
                end: None,
            })
            .collect();
        let levels = vec![(1, "Akut".into()), (2, "Oro".into()), (3, "Stabil".into())];
        let chart = chart(
            &points,
            &[(at(40, now), None)],
            &interventions,
            &levels,
            now,
        );
        assert_eq!(chart.steps.len(), 5);
        assert_eq!(chart.bars.len(), 3);
        // two level changes, two lanes
        assert_eq!(chart.risers.len(), 2);
        assert_eq!(chart.lane_labels.len(), 2);
        // time runs left to right, the acute level is on top
        assert!(chart.steps.windows(2).all(|w| w[0].x2 == w[1].x1));
        assert!(chart.steps[0].y < chart.steps[4].y);
        assert!(chart.steps[4].x2 <= WIDTH - RIGHT);
        assert!(chart.bars.iter().all(|b| b.y > chart.axis_y));
        assert_eq!(chart.marks[0].glyph, "▲");
    }

    #[test]
    fn an_empty_timeline_still_has_an_axis_and_no_shapes() {
        let chart = chart(&[], &[], &[], &[], Utc::now());
        assert!(chart.steps.is_empty() && chart.bars.is_empty());
        assert!(!chart.ticks.is_empty());
        assert!(chart.height > chart.axis_y);
    }
}
