//! The report's plot: produce throughput against message size, one line
//! per system, drawn with plotters into a PNG. Text is rendered with
//! ab_glyph from DejaVu Sans (Debian's `fonts-dejavu-core`), so that no
//! system font library is needed.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::size_label;

/// Where Debian's `fonts-dejavu-core` installs the font.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One system's line.
pub struct Series {
    /// The legend.
    pub name: String,
    /// Its colour, RGB.
    pub color: (u8, u8, u8),
    /// (payload bytes, messages per second), by increasing size.
    pub points: Vec<(usize, f64)>,
}

/// Registers the font once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT)
                .map_err(|error| format!("{FONT}: {error} (install fonts-dejavu-core)"))?;
            // plotters keeps fonts for the process's lifetime.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{FONT} is not a usable font"))
        })
        .clone()
}

/// `1.2M`, `35k`, `800`: a rate on a log axis.
fn short_number(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// Draws messages/s (left) and MB/s (right) against size into `path`.
pub fn throughput(path: &Path, series: &[Series]) -> Result<(), String> {
    register_font()?;
    draw(path, series).map_err(|error| format!("drawing {}: {error}", path.display()))
}

fn draw(path: &Path, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    // One legend above both charts, where it hides no point.
    let (top, body) = root.split_vertically(44);
    for (i, s) in series.iter().enumerate() {
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        // Up to seven systems side by side across the 1400 pixels.
        let x = 24 + 196 * i as i32;
        top.draw(&PathElement::new(
            vec![(x, 26), (x + 24, 26)],
            color.stroke_width(3),
        ))?;
        top.draw(&Circle::new((x + 12, 26), 5, color.filled()))?;
        top.draw(&Text::new(
            s.name.as_str(),
            (x + 30, 17),
            ("sans-serif", 16),
        ))?;
    }
    let (left, right) = body.split_horizontally(700);
    panel(&left, series, "messages per second", |_, rate| rate)?;
    panel(&right, series, "MB/s (payload)", |size, rate| {
        rate * size as f64 / 1e6
    })?;
    root.present()?;
    Ok(())
}

fn log2(size: usize) -> i32 {
    size.max(1).ilog2() as i32
}

/// One chart: x is log2 of the size, labelled at the sizes measured; y is
/// `value(size, msgs/s)` on a log scale.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    series: &[Series],
    y_desc: &str,
    value: impl Fn(usize, f64) -> f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(size, rate)| value(size, rate)))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    // Whole decades, so that both ends of the axis carry a label.
    let (low, high) = if values.is_empty() {
        (1.0, 10.0)
    } else {
        (
            10f64.powf(low.log10().floor()),
            10f64.powf((high.log10() + 1e-9).ceil()),
        )
    };
    // Sizes are powers of two: x is their exponent, an integer.
    let mut ticks: Vec<i32> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(size, _)| log2(size)))
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    let x_low = ticks.first().copied().unwrap_or(7) - 1;
    let x_high = ticks.last().copied().unwrap_or(20) + 1;

    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Produce, batches of 100: {y_desc}"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x_low..x_high).with_key_points(ticks),
            (low..high).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc(y_desc)
        .x_label_formatter(&|x| size_label(1 << x))
        .y_label_formatter(&|y| short_number(*y))
        .label_style(("sans-serif", 15))
        .draw()?;
    for s in series {
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        let points: Vec<(i32, f64)> = s
            .points
            .iter()
            .map(|&(size, rate)| (log2(size), value(size, rate)))
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?;
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 5, color.filled())),
        )?;
    }
    Ok(())
}

/// One line of the producers plot.
pub struct Line {
    /// The legend.
    pub name: String,
    /// Its colour, RGB.
    pub color: (u8, u8, u8),
    /// Drawn dashed (the shared-topic lines).
    pub dashed: bool,
    /// (producers, aggregate messages per second), by increasing count.
    pub points: Vec<(usize, f64)>,
}

/// Draws the aggregate rate against the producer count, one panel per
/// (title, lines), side by side, into `path`.
pub fn producers(path: &Path, panels: &[(String, Vec<Line>)]) -> Result<(), String> {
    register_font()?;
    draw_producers(path, panels).map_err(|error| format!("drawing {}: {error}", path.display()))
}

fn draw_producers(
    path: &Path,
    panels: &[(String, Vec<Line>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let width = 700 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(64);
    if let Some((_, lines)) = panels.first() {
        for (i, line) in lines.iter().enumerate() {
            let color = RGBColor(line.color.0, line.color.1, line.color.2);
            let (x, y) = (40 + 340 * (i as i32 % 4), 18 + 28 * (i as i32 / 4));
            let style = color.stroke_width(3);
            if line.dashed {
                for dash in 0..4 {
                    let from = x + 10 * dash;
                    top.draw(&PathElement::new(
                        vec![(from, y + 8), (from + 6, y + 8)],
                        style,
                    ))?;
                }
            } else {
                top.draw(&PathElement::new(vec![(x, y + 8), (x + 36, y + 8)], style))?;
            }
            top.draw(&Text::new(
                line.name.as_str(),
                (x + 46, y),
                ("sans-serif", 17),
            ))?;
        }
    }
    let areas = body.split_evenly((1, panels.len().max(1)));
    for (area, (title, lines)) in areas.iter().zip(panels) {
        producers_panel(area, title, lines)?;
    }
    root.present()?;
    Ok(())
}

fn producers_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|&(_, rate)| rate))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (low, high) = if values.is_empty() {
        (1.0, 10.0)
    } else {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        (
            10f64.powf(low.log10().floor()),
            10f64.powf((high.log10() + 1e-9).ceil()),
        )
    };
    let mut ticks: Vec<i32> = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|&(n, _)| log2(n)))
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    let x_high = ticks.last().copied().unwrap_or(4) + 1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Aggregate produce rate: {title}"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((-1..x_high).with_key_points(ticks), (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("producers")
        .y_desc("messages per second")
        .x_label_formatter(&|x| (1usize << x.max(&0)).to_string())
        .y_label_formatter(&|y| short_number(*y))
        .label_style(("sans-serif", 15))
        .draw()?;
    for line in lines {
        let color = RGBColor(line.color.0, line.color.1, line.color.2);
        let points: Vec<(i32, f64)> = line
            .points
            .iter()
            .map(|&(n, rate)| (log2(n), rate))
            .collect();
        if line.dashed {
            chart.draw_series(DashedLineSeries::new(
                points.clone(),
                6,
                4,
                color.stroke_width(3),
            ))?;
        } else {
            chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?;
        }
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 5, color.filled())),
        )?;
    }
    Ok(())
}
