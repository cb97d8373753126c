//! A table's DataFrame written as CSV (polars' writer, full precision), Markdown, LaTeX
//! and an HTML fragment (numbers to 4 significant digits, headers for people).

use anyhow::Context;
use polars::prelude::{AnyValue, Column, CsvWriter, DataFrame, SerWriter};

use crate::tables::pretty_column;

pub fn csv(df: &DataFrame) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes)
        .finish(&mut df.clone())
        .context("writing a table as CSV")?;
    Ok(bytes)
}

pub fn markdown(title: &str, note: &str, df: &DataFrame) -> String {
    let (headers, rows) = cells(df);
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut md = format!("## {title}\n\n");
    md += &line(&headers);
    let rule: Vec<String> = df
        .columns()
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
    let (headers, rows) = cells(df);
    let align: String = df
        .columns()
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
    let (headers, rows) = cells(df);
    let numeric: Vec<bool> = df.columns().iter().map(is_numeric).collect();
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

/// Headers for people and every cell as text; nulls are empty.
fn cells(df: &DataFrame) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = df
        .columns()
        .iter()
        .map(|c| pretty_column(c.name()).to_string())
        .collect();
    let rows = (0..df.height())
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| match c.get(i) {
                    Ok(AnyValue::Float64(v)) => significant(v),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(AnyValue::StringOwned(s)) => s.to_string(),
                    Ok(AnyValue::Null) | Err(_) => String::new(),
                    Ok(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    (headers, rows)
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
}
