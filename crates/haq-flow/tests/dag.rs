//! The stage graph: order, selection, neighbours and rendering (cycles: tests/workflow.rs).

use std::path::Path;

use haq_flow::{Dag, Error, Workflow};

fn workflow(source: &str) -> Workflow {
    Workflow::parse(source, Path::new("flow.yaml"), &[], &[], &|_| true)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Declared so that the order of declaration is not already a valid order.
const GRAPH: &str = "\
name: demo
stages:
  report:
    run: report
    needs: [finetune]
  pretrain:
    run: pretrain
  search:
    run: search
    needs: [calibrate]
    matrix: {hw: [edge, cloud]}
  calibrate:
    run: calibrate
    needs: [pretrain]
  finetune:
    run: finetune
    needs: ['search@${matrix.hw}']
    matrix: {hw: [edge, cloud]}
  lint:
    run: lint
";

fn names(wf: &Workflow, order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| wf.stages[i].name.clone()).collect()
}

#[test]
fn topo_order_puts_needs_first_and_otherwise_keeps_declaration_order() {
    let wf = workflow(GRAPH);
    let dag = Dag::new(&wf);
    assert_eq!(dag.len(), 8);
    assert_eq!(
        names(&wf, &dag.topo_order()),
        [
            "pretrain",
            "calibrate",
            "search@edge",
            "search@cloud",
            "finetune@edge",
            "finetune@cloud",
            "report",
            "lint",
        ]
    );
}

#[test]
fn select_takes_targets_and_everything_upstream_in_order() {
    let wf = workflow(GRAPH);
    let dag = Dag::new(&wf);
    let select = |targets: &[&str]| {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        names(&wf, &dag.select(&targets).unwrap())
    };
    assert_eq!(
        select(&["finetune@cloud"]),
        ["pretrain", "calibrate", "search@cloud", "finetune@cloud"]
    );
    assert_eq!(
        select(&["search"]),
        ["pretrain", "calibrate", "search@edge", "search@cloud"]
    );
    assert_eq!(
        select(&["lint", "calibrate"]),
        ["pretrain", "calibrate", "lint"]
    );
    assert_eq!(
        select(&[]),
        names(&wf, &dag.topo_order()),
        "no targets means all"
    );
}

#[test]
fn select_of_an_unknown_name_lists_the_names() {
    let wf = workflow(GRAPH);
    let dag = Dag::new(&wf);
    let err = dag.select(&["serch".to_string()]).unwrap_err();
    assert!(matches!(err, Error::UnknownStage { .. }));
    assert_eq!(
        err.to_string(),
        "no stage named \"serch\"; known stages: report, pretrain, search, calibrate, finetune, lint, \
         search@edge, search@cloud, finetune@edge, finetune@cloud"
    );
}

#[test]
fn upstream_and_downstream_are_the_direct_neighbours() {
    let wf = workflow(GRAPH);
    let dag = Dag::new(&wf);
    let index = |name: &str| wf.stages.iter().position(|s| s.name == name).unwrap();
    let report = index("report");
    assert_eq!(
        names(&wf, dag.upstream(report)),
        ["finetune@edge", "finetune@cloud"]
    );
    assert_eq!(
        names(&wf, &dag.downstream(index("calibrate"))),
        ["search@edge", "search@cloud"]
    );
    assert_eq!(
        names(&wf, &dag.downstream(index("search@cloud"))),
        ["finetune@cloud"]
    );
    assert!(dag.downstream(report).is_empty());
    assert!(dag.upstream(index("pretrain")).is_empty());
}

#[test]
fn text_lists_each_stage_with_its_kind_and_needs() {
    let wf = workflow("stages:\n  pretrain: {run: pretrain}\n  search:\n    run: search\n    needs: [pretrain]\n    matrix: {hw: [edge]}\n");
    let dag = Dag::new(&wf);
    assert_eq!(
        dag.render_text(&wf),
        "pretrain     run: pretrain\nsearch@edge  run: search    needs: pretrain\n"
    );
}

#[test]
fn dot_has_a_node_per_stage_and_an_edge_per_need() {
    let wf = workflow(GRAPH);
    let dag = Dag::new(&wf);
    let dot = dag.render_dot(&wf);
    assert!(dot.starts_with("digraph \"demo\" {\n"), "{dot}");
    assert!(dot.ends_with("}\n"));
    assert!(
        dot.contains("  \"search@edge\" [label=\"search@edge\\n(search)\"];\n"),
        "{dot}"
    );
    let edges: Vec<&str> = dot.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(
        edges,
        [
            "  \"pretrain\" -> \"calibrate\";",
            "  \"calibrate\" -> \"search@edge\";",
            "  \"calibrate\" -> \"search@cloud\";",
            "  \"search@edge\" -> \"finetune@edge\";",
            "  \"search@cloud\" -> \"finetune@cloud\";",
            "  \"finetune@edge\" -> \"report\";",
            "  \"finetune@cloud\" -> \"report\";",
        ]
    );
    assert_eq!(
        dot.lines().filter(|l| l.contains("[label=")).count(),
        wf.stages.len()
    );
}

#[test]
fn dot_quotes_names_safely() {
    let mut wf = workflow("stages:\n  a: {run: pretrain}\n");
    wf.name = "my \"flow\"".into();
    let dot = Dag::new(&wf).render_dot(&wf);
    assert!(dot.starts_with("digraph \"my \\\"flow\\\"\" {"), "{dot}");
}
