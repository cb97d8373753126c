//! `index.html`: the claims, every table and every figure on one page that needs nothing
//! but the files beside it (no scripts, no external URLs), with links to every file.

use crate::claims::Claim;
use crate::formats::html_escape;

/// A table as the page shows it.
pub struct TableSection<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub note: String,
    /// The `<table>` element.
    pub html: String,
}

/// A figure as the page shows it: `<name>.png`, linked with `<name>.svg`.
pub struct FigureSection<'a> {
    pub name: &'a str,
    pub title: &'a str,
}

const STYLE: &str =
    "body{font-family:sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:.25em .6em}\
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.note,.rule{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #ddd}\
figure{margin:1.5em 0}.holds{color:#176f2c}.does-not-hold{color:#b3261e}.not-tested{color:#777}.undecided{color:#a05a00}\
.claim h3 span{font-size:.85em;margin-left:.5em}";

pub fn index(
    workflow: &str,
    summary: &str,
    claims: &[Claim],
    tables: &[TableSection],
    figures: &[FigureSection],
) -> String {
    let title = format!("HAQ report: {}", html_escape(workflow));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{}</p>\n",
        html_escape(summary)
    );
    out += "<p>Contents: <a href=\"#claims\">claims</a> · <a href=\"#tables\">tables</a> · <a href=\"#figures\">figures</a></p>\n";

    out += "<h2 id=\"claims\">The paper's claims, checked on this run</h2>\n";
    out += "<p>Also as <a href=\"claims.md\">claims.md</a> and <a href=\"claims.json\">claims.json</a>.</p>\n";
    out += &crate::claims::html(claims);

    out += "<h2 id=\"tables\">Tables</h2>\n";
    if tables.is_empty() {
        out += "<p>No finetuned search: no table.</p>\n";
    }
    for t in tables {
        out += &format!(
            "<h3 id=\"{0}\">{1}</h3>\n{2}<p class=\"note\">{3}</p>\n<p>As <a href=\"{0}.md\">Markdown</a> · <a href=\"{0}.csv\">CSV</a> · <a href=\"{0}.tex\">LaTeX</a></p>\n",
            t.name,
            html_escape(t.title),
            t.html,
            html_escape(&t.note)
        );
    }

    // Named, not linked: the page must be the same bytes on every machine, and the
    // seconds are outside the report.
    out += &format!(
        "<p>The searches' cost in seconds, which depends on the machine, is not in this \
         report: it is in <code>reports/{}/</code> beside it.</p>\n",
        html_escape(&crate::search_cost::dir(workflow))
    );

    out += "<h2 id=\"figures\">Figures</h2>\n";
    for f in figures {
        out += &format!(
            "<figure id=\"{0}\">\n<img src=\"{0}.png\" alt=\"{1}\">\n<figcaption>{1} (<a href=\"{0}.png\">PNG</a> · <a href=\"{0}.svg\">SVG</a>)</figcaption>\n</figure>\n",
            f.name,
            html_escape(f.title)
        );
    }
    out + "</body>\n</html>\n"
}

/// The files a page links to: every `href` and `src` that is not an anchor on the page.
pub fn linked_files(html: &str) -> Vec<&str> {
    let mut files = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let target = &rest[..rest.find('"').unwrap_or(rest.len())];
            if !target.starts_with('#') {
                files.push(target);
            }
        }
    }
    files.sort_unstable();
    files.dedup();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_every_file_of_its_tables_and_figures_and_nothing_else() {
        let tables = [TableSection {
            name: "table-size",
            title: "Size <MiB>",
            note: "n".into(),
            html: "<table></table>\n".into(),
        }];
        let figures = [FigureSection {
            name: "roofline",
            title: "Ops & bytes",
        }];
        let page = index("smoke", "s", &[], &tables, &figures);
        assert!(
            page.contains("<h3 id=\"table-size\">Size &lt;MiB&gt;</h3>"),
            "{page}"
        );
        assert!(!page.contains("http"), "no external URL: {page}");
        assert_eq!(
            linked_files(&page),
            [
                "claims.json",
                "claims.md",
                "roofline.png",
                "roofline.svg",
                "table-size.csv",
                "table-size.md",
                "table-size.tex"
            ]
        );
    }
}
