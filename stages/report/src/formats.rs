//! A table's DataFrame written as CSV (polars' writer, full precision), Markdown, LaTeX
//! and an HTML fragment (numbers to 4 significant digits, headers for people).

use anyhow::Context;
use polars::prelude::{AnyValue, Column, CsvWriter, DataFrame, SerWriter};

use crate::stats::ci_digits;
use crate::tables::pretty_column;

pub fn csv(df: &DataFrame) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes)
        .finish(&mut df.clone())
        .context("writing a table as CSV")?;
    Ok(bytes)
}

pub fn markdown(title: &str, note: &str, df: &DataFrame) -> String {
    let (columns, headers, rows) = cells(df);
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut md = format!("## {title}\n\n");
    md += &line(&headers);
    let rule: Vec<String> = columns
        .iter()
        .map(|c| if is_numeric(c) { "---:" } else { "---" }.to_string())
        .collect();
    md += &line(&rule);
    for row in &rows {
        md += &line(
            &row.iter()
                .map(|c| c.replace('|', "\\|"))
                .collect::<Vec<_>>(),
        );
    }
    md + &format!("\n{note}\n")
}

/// A `table` float with a booktabs `tabular` (needs `\usepackage{booktabs}`).
pub fn latex(title: &str, label: &str, df: &DataFrame) -> String {
    let (columns, headers, rows) = cells(df);
    let align: String = columns
        .iter()
        .map(|c| if is_numeric(c) { 'r' } else { 'l' })
        .collect();
    let line = |cells: &[String]| {
        let escaped: Vec<String> = cells.iter().map(|c| latex_escape(c)).collect();
        format!("    {} \\\\\n", escaped.join(" & "))
    };
    let mut tex = format!(
        "\\begin{{table}}[t]\n  \\centering\n  \\caption{{{}}}\n  \\label{{tab:{label}}}\n  \\begin{{tabular}}{{{align}}}\n    \\toprule\n",
        latex_escape(title)
    );
    tex += &line(&headers);
    tex += "    \\midrule\n";
    for row in &rows {
        tex += &line(row);
    }
    tex + "    \\bottomrule\n  \\end{tabular}\n\\end{table}\n"
}

pub fn html(df: &DataFrame) -> String {
    let (columns, headers, rows) = cells(df);
    let numeric: Vec<bool> = columns.iter().map(|c| is_numeric(c)).collect();
    let cell = |tag: &str, i: usize, text: &str| {
        let class = if numeric[i] { " class=\"num\"" } else { "" };
        format!("<{tag}{class}>{}</{tag}>", html_escape(text))
    };
    let mut out = String::from("<table>\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        out += &cell("th", i, h);
    }
    out += "</tr></thead>\n<tbody>\n";
    for row in &rows {
        out += "<tr>";
        for (i, c) in row.iter().enumerate() {
            out += &cell("td", i, c);
        }
        out += "</tr>\n";
    }
    out + "</tbody>\n</table>\n"
}

/// The columns people's formats show, their headers and every cell as text; nulls are
/// empty. A column `x` with `x_ci_low` and `x_ci_high` beside it shows `mean ± half-width`
/// (a zero-width interval as the mean alone); the first such column also the `n` column's
/// `(n=N)`, so a single sample says so. The interval and `n` columns are folded away.
fn cells(df: &DataFrame) -> (Vec<&Column>, Vec<String>, Vec<Vec<String>>) {
    let find = |name: &str| df.columns().iter().find(|c| c.name().as_str() == name);
    let n = find("n");
    let folded = |c: &Column| {
        let name = c.name().as_str();
        name == "n" || name.ends_with("_ci_low") || name.ends_with("_ci_high")
    };
    let shown: Vec<&Column> = df.columns().iter().filter(|c| !folded(c)).collect();
    let intervals: Vec<Option<(&Column, &Column)>> = shown
        .iter()
        .map(|c| {
            Some((
                find(&format!("{}_ci_low", c.name()))?,
                find(&format!("{}_ci_high", c.name()))?,
            ))
        })
        .collect();
    let first_stat = intervals.iter().position(Option::is_some);
    let float = |c: &Column, i: usize| match c.get(i) {
        Ok(AnyValue::Float64(v)) => Some(v),
        _ => None,
    };
    let text = |c: &Column, i: usize| match c.get(i) {
        Ok(AnyValue::Float64(v)) => significant(v),
        Ok(AnyValue::String(s)) => s.to_string(),
        Ok(AnyValue::StringOwned(s)) => s.to_string(),
        Ok(AnyValue::Null) | Err(_) => String::new(),
        Ok(other) => other.to_string(),
    };
    let headers = shown
        .iter()
        .map(|c| pretty_column(c.name()).to_string())
        .collect();
    let rows = (0..df.height())
        .map(|i| {
            shown
                .iter()
                .zip(&intervals)
                .enumerate()
                .map(|(k, (c, interval))| {
                    let mut cell = text(c, i);
                    let Some((low, high)) = interval else {
                        return cell;
                    };
                    if let (Some(l), Some(h)) = (float(low, i), float(high, i)) {
                        if h > l {
                            cell += &format!(" ± {}", ci_digits((h - l) / 2.0));
                        }
                    }
                    let count = n.and_then(|n| n.get(i).ok()?.extract::<u32>());
                    if let (Some(count), true, false) =
                        (count, first_stat == Some(k), cell.is_empty())
                    {
                        cell += &format!(" (n={count})");
                    }
                    cell
                })
                .collect()
        })
        .collect();
    (shown, headers, rows)
}

fn is_numeric(column: &Column) -> bool {
    column.dtype().is_primitive_numeric()
}

/// `v` to 4 significant digits, without an exponent: 91.25, 1.643, 0.1203, 12345.
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn latex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    fn frame() -> DataFrame {
        df!(
            "method" => ["PACT", "HAQ"],
            "top1" => [91.256, 9.0],
            "latency_ms" => [Some(1.64334), None::<f64>],
            "stage" => ["pact@4", "haq_a|b"],
        )
        .unwrap()
    }

    #[test]
    fn numbers_have_four_significant_digits() {
        assert_eq!(significant(91.256), "91.26");
        assert_eq!(significant(1.643349), "1.643");
        assert_eq!(significant(0.120256), "0.1203");
        assert_eq!(significant(12345.6), "12346");
        assert_eq!(significant(-0.5), "-0.5000");
        assert_eq!(significant(0.0), "0");
    }

    #[test]
    fn formats_show_every_row_with_people_headers_and_escaping() {
        let df = frame();
        let md = markdown("T", "note", &df);
        assert!(
            md.contains("| Method | Top-1 (%) | Latency (ms) | Stage |"),
            "{md}"
        );
        assert!(md.contains("| --- | ---: | ---: | --- |"), "{md}");
        assert!(md.contains("| PACT | 91.26 | 1.643 | pact@4 |"), "{md}");
        assert!(md.contains("| HAQ | 9.000 |  | haq_a\\|b |"), "{md}");
        let tex = latex("50% & more", "x", &df);
        assert!(tex.contains("\\caption{50\\% \\& more}"), "{tex}");
        assert!(tex.contains("{lrrl}"), "{tex}");
        assert!(tex.contains("HAQ & 9.000 &  & haq\\_a|b \\\\"), "{tex}");
        let html = html(&df);
        assert_eq!(html.matches("<tr>").count(), 3, "{html}");
        assert!(html.contains("<td class=\"num\">1.643</td>"), "{html}");
        let csv = String::from_utf8(csv(&df).unwrap()).unwrap();
        assert_eq!(
            csv,
            "method,top1,latency_ms,stage\nPACT,91.256,1.64334,pact@4\nHAQ,9.0,,haq_a|b\n"
        );
    }

    #[test]
    fn intervals_fold_into_their_mean_and_single_samples_say_so() {
        let df = df!(
            "method" => ["Float", "PACT", "HAQ"],
            "top1" => [91.0, 88.25, 89.5],
            "top1_ci_low" => [None, None, Some(89.29)],
            "top1_ci_high" => [None, None, Some(89.71)],
            "latency_ms" => [None, Some(1.0), Some(0.9512)],
            "latency_ms_ci_low" => [None, None, Some(0.9412)],
            "latency_ms_ci_high" => [None, None, Some(0.9612)],
            "n" => [None, Some(1u32), Some(3u32)],
        )
        .unwrap();
        let md = markdown("T", "note", &df);
        assert!(
            md.contains("| Method | Top-1 (%) | Latency (ms) |\n| --- | ---: | ---: |"),
            "{md}"
        );
        assert!(md.contains("| Float | 91.00 |  |"), "{md}");
        assert!(md.contains("| PACT | 88.25 (n=1) | 1.000 |"), "{md}");
        assert!(
            md.contains("| HAQ | 89.50 ± 0.21 (n=3) | 0.9512 ± 0.010 |"),
            "{md}"
        );
        let tex = latex("T", "x", &df);
        assert!(tex.contains("{lrr}"), "{tex}");
        assert!(html(&df).contains("<td class=\"num\">89.50 ± 0.21 (n=3)</td>"));
        // CSV keeps every number in its own column.
        let csv = String::from_utf8(csv(&df).unwrap()).unwrap();
        assert!(
            csv.starts_with("method,top1,top1_ci_low,top1_ci_high,latency_ms,"),
            "{csv}"
        );
        assert!(
            csv.contains("HAQ,89.5,89.29,89.71,0.9512,0.9412,0.9612,3"),
            "{csv}"
        );
    }
}
