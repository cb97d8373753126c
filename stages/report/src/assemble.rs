//! Puts the report together: every table in every format, the claims, the figures and
//! the page that links them, as the list of files to write.

use polars::prelude::DataFrame;

use crate::collect::Experiments;
use crate::html::{FigureSection, TableSection};
use crate::output::File;
use crate::roles::Role;
use crate::{claims, figures, formats, html, tables};

/// Every file of the report.
pub fn report(workflow: &str, exp: &Experiments) -> anyhow::Result<Vec<File>> {
    let mut files = Vec::new();
    let tables = tables::paper_tables(exp);
    let proxy_tables = tables::proxy_tables(exp);
    let mut table_sections = Vec::new();
    for t in tables.iter().chain(&proxy_tables) {
        let df = t.frame()?;
        let note = t.note();
        files.extend(table_files(&t.name, &t.title, &note, &df)?);
        table_sections.push(TableSection {
            name: &t.name,
            title: &t.title,
            note,
            html: formats::html(&df),
        });
    }
    let claims = claims::decide(exp, &tables);
    files.push(File::text("claims.md".into(), claims::markdown(&claims)));
    files.push(File::new(
        "claims.json".into(),
        claims::json(&claims)?,
        "application/json",
    ));

    let figures = figures::figures(exp)?;
    for f in &figures {
        files.push(File::new(
            format!("{}.png", f.name),
            f.png.clone(),
            "image/png",
        ));
        files.push(File::new(
            format!("{}.svg", f.name),
            f.svg.clone().into_bytes(),
            "image/svg+xml",
        ));
    }
    let figure_sections: Vec<FigureSection> = figures
        .iter()
        .map(|f| FigureSection {
            name: &f.name,
            title: &f.title,
        })
        .collect();
    let index = html::index(
        workflow,
        &summary(exp),
        &claims,
        &table_sections,
        &figure_sections,
    );
    for link in html::linked_files(&index) {
        anyhow::ensure!(
            files.iter().any(|f| f.name == link),
            "index.html links {link}, which the report does not write (a bug in haq-report)"
        );
    }
    files.push(File::new(
        "index.html".into(),
        index.into_bytes(),
        "text/html",
    ));
    Ok(files)
}

/// A table as Markdown, CSV and LaTeX.
pub fn table_files(
    name: &str,
    title: &str,
    note: &str,
    df: &DataFrame,
) -> anyhow::Result<[File; 3]> {
    Ok([
        File::text(format!("{name}.md"), formats::markdown(title, note, df)),
        File::new(format!("{name}.csv"), formats::csv(df)?, "text/csv"),
        File::text(format!("{name}.tex"), formats::latex(title, name, df)),
    ])
}

/// One line on what the report covers.
fn summary(exp: &Experiments) -> String {
    let count = |role| {
        exp.layers
            .iter()
            .filter(|l| Role::of(&l.shape) == role)
            .count()
    };
    format!(
        "{} quantizable layers ({} depthwise, {} pointwise); float model: test top-1 {:.2}%, \
         top-5 {:.2}%; {} searches, {} finetuned policies ({} of them searched).",
        exp.layers.len(),
        count(Role::Depthwise),
        count(Role::Pointwise),
        exp.float.test_top1,
        exp.float.test_top5,
        exp.searches.len(),
        exp.finetunes.len(),
        exp.finetunes.iter().filter(|f| f.search.is_some()).count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::experiments;

    #[test]
    fn the_report_is_every_file_the_page_links_and_the_same_bytes_every_time() {
        figures::load_font().unwrap();
        let exp = experiments();
        let files = report("w", &exp).unwrap();
        let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        let mut expected = vec![
            "claims.json".to_string(),
            "claims.md".into(),
            "index.html".into(),
        ];
        for t in [
            "table-latency-bismo-edge",
            "table-latency-bismo-cloud",
            "table-size",
        ] {
            expected.extend(["md", "csv", "tex"].map(|e| format!("{t}.{e}")));
        }
        for f in [
            "bits-latency-uniform-4",
            "bits-size-uniform-w2",
            "search-s-cloud",
            "search-s-edge",
            "search-s-size",
            "accuracy-vs-latency-bismo-edge",
            "accuracy-vs-latency-bismo-cloud",
            "accuracy-vs-size",
            "roofline",
        ] {
            expected.extend(["png", "svg"].map(|e| format!("{f}.{e}")));
        }
        expected.sort_unstable();
        assert_eq!(names, expected);

        let index = &files.iter().find(|f| f.name == "index.html").unwrap().bytes;
        let index = std::str::from_utf8(index).unwrap();
        let mut linked = html::linked_files(index);
        linked.push("index.html");
        linked.sort_unstable();
        assert_eq!(linked, names, "the page links every other file");

        for f in files.iter().filter(|f| f.name.ends_with(".png")) {
            let img = image::load_from_memory(&f.bytes).unwrap().to_rgb8();
            let background = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
            let inked = img.pixels().len() - background;
            assert!(
                inked > img.pixels().len() / 50,
                "{} is nearly blank",
                f.name
            );
        }
        let again = report("w", &exp).unwrap();
        for (a, b) in files.iter().zip(&again) {
            assert!(a.bytes == b.bytes, "{} differs between two runs", a.name);
        }
    }

    #[test]
    fn seconds_are_only_in_search_cost_and_greedys_front_is_drawn() {
        use crate::search_cost;
        use crate::testdata::other_method;
        use haq_cost::method::Method;
        figures::load_font().unwrap();
        let mut exp = experiments();
        let mut greedy = other_method(&exp.searches[1], "s-edge-greedy", Method::Greedy);
        greedy.seconds = Some(1234.5);
        exp.searches.push(greedy);
        let mut f = exp.finetunes[2].clone();
        f.stage = "haq-edge-greedy".into();
        f.search = Some(3);
        exp.finetunes.push(f);
        let files = report("w", &exp).unwrap();
        for f in &files {
            let bytes = String::from_utf8_lossy(&f.bytes);
            assert!(
                !bytes.contains("1234"),
                "{} shows a search's seconds",
                f.name
            );
        }
        let cost = search_cost::files(&exp).unwrap();
        let names: Vec<&str> = cost.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["search-cost.md", "search-cost.csv", "search-cost.tex"]
        );
        let csv = String::from_utf8(cost[1].bytes.clone()).unwrap();
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                "stage,method,hardware,objective,budget,policies_scored,seconds",
                "s-cloud,HAQ (DDPG),bismo-cloud,latency,the cost of uniform:4,4,60.0",
                "s-edge,HAQ (DDPG),bismo-edge,latency,the cost of uniform:4,4,60.0",
                "s-size,HAQ (DDPG),size,size,the cost of uniform-w2,4,60.0",
                "s-edge-greedy,greedy sensitivity (AIMET-style),bismo-edge,latency,\
                 the cost of uniform:4,6,1234.5",
            ]
        );
        let svg = |name: &str| {
            let f = files.iter().find(|f| f.name == name).unwrap();
            String::from_utf8(f.bytes.clone()).unwrap()
        };
        let edge = svg("accuracy-vs-latency-bismo-edge.svg");
        assert!(edge.contains("greedy walk&apos;s front"), "{edge}");
        assert!(!svg("accuracy-vs-latency-bismo-cloud.svg").contains("greedy walk"));
    }
}
