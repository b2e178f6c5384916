//! Line charts as SVG (plotters), one series per allocator, with integer
//! tick labels and the legend in a panel of its own beside the plot, so it
//! can never cover a line. Each series also carries its own marker, at
//! sample positions staggered between series, so series lying on each
//! other (several allocators at 0 failures) all stay visible.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

/// One line: its legend name, more legend lines in grey, and points.
pub struct Series {
    pub name: String,
    pub notes: Vec<String>,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// A logarithmic y axis (base 2), for page counts spanning 1..2^14;
    /// values below 1 are drawn at 1.
    pub log_y: bool,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];
const SIZE: (u32, u32) = (960, 420);
const LEGEND_WIDTH: u32 = 230;

/// An integer with thousands separators: `16000.0` prints as `16,000`.
pub fn integer(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Markers per series along the x axis.
const MARKS: usize = 10;

/// Draws marker `kind` centred on the pixel `at` of `area`.
fn marker(
    area: &DrawingArea<SVGBackend, Shift>,
    kind: usize,
    at: (i32, i32),
    colour: RGBColor,
) -> DrawResult {
    let (x, y) = at;
    let square = [(x - 4, y - 4), (x + 4, y + 4)];
    match kind % 6 {
        0 => area.draw(&Circle::new(at, 4, colour.filled())),
        1 => area.draw(&TriangleMarker::new(at, 6, colour.filled())),
        2 => area.draw(&Rectangle::new(square, colour.filled())),
        3 => area.draw(&Cross::new(at, 5, colour.stroke_width(2))),
        4 => area.draw(&Circle::new(at, 4, colour.stroke_width(2))),
        _ => area.draw(&Rectangle::new(square, colour.stroke_width(2))),
    }
}

pub fn lines(path: &Path, chart: &Chart, series: &[Series]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let data_min = values().fold(f64::INFINITY, f64::min);
    let data_max = values().fold(f64::NEG_INFINITY, f64::max).max(1.0);

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    if chart.log_y {
        let top = data_max.log2().ceil().exp2();
        let y = (1.0..top).log_scale().base(2.0);
        draw(&plot_area, chart, series, x_max, y, 0.0).map_err(|e| err(&e))?;
    } else {
        // Room below the lowest value, so a line lying on it (0 failures)
        // is drawn whole above the axis.
        let span = data_max - data_min.min(0.0);
        let low = data_min.min(0.0) - span * 0.03;
        draw(
            &plot_area,
            chart,
            series,
            x_max,
            low..data_max * 1.04,
            data_min.min(0.0),
        )
        .map_err(|e| err(&e))?;
    }
    legend(&legend_area, series).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The plot itself; tick labels below `label_floor` (the padding under a
/// quantity that is never negative) are left blank.
fn draw<Y>(
    area: &DrawingArea<SVGBackend, Shift>,
    chart: &Chart,
    series: &[Series],
    x_max: f64,
    y: Y,
    label_floor: f64,
) -> DrawResult
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut plot = ChartBuilder::on(area)
        .caption(chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, y)?;
    let floor = |y: f64| if chart.log_y { y.max(1.0) } else { y };
    // A tick between two integers (a range of a few units) gets no label
    // rather than a rounded duplicate of its neighbour's.
    let label = |v: &f64| {
        if (v - v.round()).abs() > 1e-6 {
            String::new()
        } else {
            integer(*v)
        }
    };
    let y_label = |v: &f64| {
        if *v < label_floor - 1e-9 {
            String::new()
        } else {
            label(v)
        }
    };
    plot.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .x_label_formatter(&label)
        .y_label_formatter(&y_label)
        .y_labels(if chart.log_y { 15 } else { 10 })
        .draw()?;
    for (index, s) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        plot.draw_series(LineSeries::new(
            s.points.iter().map(|&(x, y)| (x, floor(y))),
            colour.stroke_width(2),
        ))?;
    }
    // Markers after every line, so no line covers another's markers; the
    // plotting area starts at the SVG's origin, so its pixels are `area`'s.
    for (index, s) in series.iter().enumerate() {
        let every = (s.points.len() / MARKS).max(1);
        let offset = index * every / series.len();
        for &(x, y) in s.points.iter().skip(offset).step_by(every) {
            let at = plot.backend_coord(&(x, floor(y)));
            marker(area, index, at, COLOURS[index % COLOURS.len()])?;
        }
    }
    Ok(())
}

/// The legend: one entry per series, a swatch of its line and marker and
/// its name, the notes in grey below.
fn legend(area: &DrawingArea<SVGBackend, Shift>, series: &[Series]) -> DrawResult {
    let name_font = ("sans-serif", 15).into_font();
    let note_font = ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90));
    let mut y = 60;
    for (index, s) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        area.draw(&PathElement::new(
            vec![(6, y + 8), (34, y + 8)],
            colour.stroke_width(2),
        ))?;
        marker(area, index, (20, y + 8), colour)?;
        area.draw(&Text::new(s.name.as_str(), (42, y), name_font.clone()))?;
        y += 20;
        for note in &s.notes {
            area.draw(&Text::new(note.as_str(), (42, y), note_font.clone()))?;
            y += 17;
        }
        y += 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of every `<text>` element of an SVG written by plotters.
    fn texts(svg: &str) -> Vec<String> {
        let lines: Vec<&str> = svg.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].starts_with("<text"))
            .map(|w| w[1].trim().to_string())
            .collect()
    }

    #[test]
    fn a_small_range_has_integer_labels_only() {
        let path = std::env::temp_dir().join(format!("fragstat-{}.svg", std::process::id()));
        let series = [Series {
            name: "a".into(),
            notes: vec!["0 of 3 failed".into()],
            points: vec![(0.0, 0.0), (1.0, 1.0), (3.0, 2.0)],
        }];
        let chart = Chart {
            title: "t",
            x_label: "x",
            y_label: "y",
            log_y: false,
        };
        lines(&path, &chart, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let numbers: Vec<String> = texts(&svg)
            .into_iter()
            .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()) && !t.contains(' '))
            .collect();
        assert!(numbers.iter().any(|t| t == "2"), "{numbers:?}");
        assert!(numbers.iter().all(|t| !t.contains('.')), "{numbers:?}");
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        // Each value labels at most one tick per axis.
        assert!(unique.len() * 2 >= numbers.len(), "{numbers:?}");
    }

    #[test]
    fn tick_labels_are_grouped_integers() {
        assert_eq!(integer(16000.0), "16,000");
        assert_eq!(integer(200000.0), "200,000");
        assert_eq!(integer(999.6), "1,000");
        assert_eq!(integer(0.0), "0");
        assert_eq!(integer(-1000.0), "-1,000");
    }
}
