//! Measured cost tables: the CSV format `haq hw table` writes and `MeasuredCosts` reads,
//! the bit-operations proxy, and the errors a bad table file gets.

use haq_cost::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_cost::budget::{Budget, Constraint, Resource};
use haq_cost::env::{BitRange, Env, Mode};
use haq_cost::hw::{build_table, by_name, write_csv, CostModel, CostTable, MeasuredCosts, Unit};
use haq_cost::policy::Policy;

fn mobilenet_v2() -> Vec<LayerInfo> {
    layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))
}

/// `model`'s table for `ls` in the CSV format, values in `unit`.
fn csv(model: &str, ls: &[LayerInfo], unit: Unit) -> String {
    let model = by_name(model).unwrap();
    let table = build_table(model.as_ref(), ls, model.default_batch());
    let mut out = Vec::new();
    write_csv(&mut out, ls, &table, unit).unwrap();
    String::from_utf8(out).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn a_written_table_reads_back_as_the_same_costs() {
    let ls = mobilenet_v2();
    for (name, unit) in [
        ("bismo-cloud", Unit::Ms),
        ("bismo-edge", Unit::Cycles),
        ("size", Unit::Bytes),
        ("bops", Unit::Bops),
    ] {
        let text = csv(name, &ls, unit);
        let measured = MeasuredCosts::parse("device", "device.csv", &text).unwrap();
        measured.covers(&ls).unwrap();
        let original = by_name(name).unwrap();
        assert_eq!(measured.default_batch(), original.default_batch(), "{name}");
        assert_eq!(
            measured.units()[0],
            if unit == Unit::Cycles { Unit::Ms } else { unit }
        );
        let table = build_table(&measured, &ls, measured.default_batch());
        assert_eq!(
            (table.model.as_str(), table.units.as_slice()),
            ("device", measured.units())
        );
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(serde_json::from_str::<CostTable>(&json).unwrap(), table);
        let reference = build_table(original.as_ref(), &ls, original.default_batch());
        for (i, _) in ls.iter().enumerate() {
            for (w, a) in [(1, 1), (2, 7), (8, 3), (8, 8)] {
                let (got, want) = (table.get(i, w, a), reference.get(i, w, a));
                assert!(
                    close(got.value(unit), want.value(unit)),
                    "{name} layer {i} w{w} a{a}"
                );
                if unit == Unit::Cycles {
                    // cycles@<clock> gives latency too.
                    assert!(close(got.latency_s, want.latency_s), "{name} layer {i}");
                }
            }
        }
    }
}

#[test]
fn bitfusions_table_is_refused_as_its_per_layer_costs_are_not_monotone() {
    // The simulator maps each layer for the fewest cycles; at a wider bit width another
    // mapping can win and spend far less energy, so the template does not load as-is.
    let text = csv("bitfusion", &mobilenet_v2(), Unit::Mj);
    let err = MeasuredCosts::parse("bf", "bf.csv", &text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a cost must not fall by more than 1% as bits rise"),
        "{err}"
    );
}

#[test]
fn rows_are_matched_by_shape_so_one_table_serves_several_networks() {
    // A table measured for MobileNet-V2 at 32 px and ResNet-18 at 32 px, rows shuffled and
    // the informational columns dropped, costs both networks as the simulator does.
    let v2 = mobilenet_v2();
    let resnet = layers(&ArchConfig::new(Arch::ResNet18, 32, 10));
    let mut rows: Vec<String> = Vec::new();
    for ls in [&v2, &resnet] {
        rows.extend(csv("bismo-edge", ls, Unit::Ms).lines().skip(1).map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            fields[2..].join(",")
        }));
    }
    rows.reverse();
    let header =
        "kind,c_in,c_out,kernel,stride,groups,in_h,in_w,out_h,out_w,batch,w_bits,a_bits,value,unit";
    let text = format!(
        "# measured on a test rig\n{header}\n\n{}\n",
        rows.join("\r\n")
    );
    let measured = MeasuredCosts::parse("rig", "rig.csv", &text).unwrap();
    let edge = by_name("bismo-edge").unwrap();
    for ls in [&v2, &resnet] {
        measured.covers(ls).unwrap();
        let bits = Policy::uniform(ls.len(), 4).bits();
        let got = build_table(&measured, ls, 1).total(&bits).latency_s;
        let want = build_table(edge.as_ref(), ls, 1).total(&bits).latency_s;
        assert!(close(got, want), "{got} vs {want}");
    }
    // MobileNet-V1's first two layers have V2's shapes; its third is refused, named.
    let v1 = layers(&ArchConfig::new(Arch::MobileNetV1, 32, 10));
    let err = measured.covers(&v1).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "rig.csv: no row for the shape of layer 2 (features.0.3: conv c_in=32 c_out=64 \
             kernel=1 stride=1 groups=1 in_h=32 in_w=32 out_h=32 out_w=32); measure it"
        ),
        "{err}"
    );
}

#[test]
fn a_size_search_on_a_measured_table_refuses_a_ratio_budget_and_matches_a_policy() {
    // A ratio budget for size is a fraction of the fp32 size, beyond a table's bits 1..=8.
    let ls = mobilenet_v2();
    let measured = MeasuredCosts::parse("rig", "rig.csv", &csv("size", &ls, Unit::Bytes)).unwrap();
    let table = build_table(&measured, &ls, measured.default_batch());
    let objective = || {
        Resource::Size
            .cost_function(&measured, &table, &ls)
            .unwrap()
    };
    assert_eq!(objective().reference, None);
    let env = Env::new(&ls, Mode::Kmeans, BitRange::default_for(Mode::Kmeans)).unwrap();
    let err = Constraint::new(objective(), &Budget::Ratio(0.1), &env)
        .err()
        .expect("a ratio budget has no fp32 size to be a fraction of")
        .to_string();
    assert!(
        err.contains("budget") && err.contains("{match: \"uniform-w2\"}"),
        "{err}"
    );
    // A matched policy is costed on the table itself: the size model's number.
    let matched = Constraint::new(objective(), &Budget::Match("uniform-w2".into()), &env).unwrap();
    let size = by_name("size").unwrap();
    let want = build_table(size.as_ref(), &ls, size.default_batch())
        .total(&Policy::uniform_weights(ls.len(), 2).bits())
        .bytes;
    assert!(
        close(matched.budget(), want),
        "{} vs {want}",
        matched.budget()
    );
}

#[test]
fn costs_scale_with_the_batch_from_the_measured_one() {
    let ls = mobilenet_v2();
    let measured = MeasuredCosts::parse("c", "c.csv", &csv("bismo-cloud", &ls, Unit::Ms)).unwrap();
    assert_eq!(measured.default_batch(), 16);
    let at16 = measured.cost(&ls[3].shape, 4, 4, 16).latency_s;
    let at4 = measured.cost(&ls[3].shape, 4, 4, 4).latency_s;
    assert!(close(at4 * 4.0, at16), "{at4} {at16}");
}

#[test]
fn bit_operations_are_macs_times_both_widths() {
    let ls = mobilenet_v2();
    let bops = by_name("bops").unwrap();
    assert_eq!(bops.units(), [Unit::Bops]);
    let l = &ls[5].shape;
    let cost = bops.cost(l, 3, 5, 2);
    assert_eq!(cost.bops, (l.macs() * 2 * 15) as f64);
    assert_eq!((cost.latency_s, cost.energy_j, cost.bytes), (0.0, 0.0, 0.0));
}

/// A small valid table for one layer, to break one way at a time.
fn one_layer() -> (Vec<LayerInfo>, String) {
    let ls: Vec<LayerInfo> = mobilenet_v2().into_iter().skip(1).take(1).collect();
    let text = csv("bismo-edge", &ls, Unit::Ms);
    (ls, text)
}

/// The error `text` gets, read as `t.csv`.
fn error(text: &str) -> String {
    let err = MeasuredCosts::parse("t", "t.csv", text)
        .unwrap_err()
        .to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// `text` with line `n` (1-based) replaced by what `edit` makes of it.
fn edit_line(text: &str, n: usize, edit: impl Fn(&str) -> String) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { edit(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bad_table_files_get_one_line_naming_file_line_and_column() {
    let (ls, good) = one_layer();
    MeasuredCosts::parse("t", "t.csv", &good)
        .unwrap()
        .covers(&ls)
        .unwrap();

    let missing_column = good.replacen(",a_bits,", ",", 1);
    let err = error(&missing_column);
    assert!(
        err.starts_with("t.csv:1: column a_bits: missing from the header"),
        "{err}"
    );

    let unknown_column = good.replacen(",unit", ",units", 1);
    assert!(error(&unknown_column).starts_with("t.csv:1: column units: unknown column"));

    // Line 2 is the layer at w1 a1.
    let field = |l: &str, i: usize, v: &str| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[i] = v;
        f.join(",")
    };
    let unknown_unit = edit_line(&good, 2, |l| field(l, 16, "seconds"));
    let err = error(&unknown_unit);
    assert!(
        err.starts_with("t.csv:2: column unit: `seconds`; expected ms, mJ"),
        "{err}"
    );

    let no_clock = edit_line(&good, 2, |l| field(l, 16, "cycles"));
    assert!(error(&no_clock).starts_with("t.csv:2: column unit: `cycles`"));

    let mixed_units = edit_line(&good, 3, |l| field(l, 16, "mJ"));
    let err = error(&mixed_units);
    assert!(
        err.starts_with("t.csv:3: column unit: mJ where line 2 has ms"),
        "{err}"
    );

    let negative = edit_line(&good, 5, |l| field(l, 15, "-0.25"));
    let err = error(&negative);
    assert!(
        err.starts_with("t.csv:5: column value: -0.25 is negative"),
        "{err}"
    );

    let not_a_number = edit_line(&good, 5, |l| field(l, 15, "fast"));
    assert!(
        error(&not_a_number).starts_with("t.csv:5: column value: `fast` is not a finite number")
    );

    let bad_bits = edit_line(&good, 4, |l| field(l, 13, "9"));
    let err = error(&bad_bits);
    assert!(
        err.starts_with("t.csv:4: column w_bits: `9` is not a whole number in 1..=8"),
        "{err}"
    );

    let short_row = edit_line(&good, 4, |l| l.rsplit_once(',').unwrap().0.to_string());
    assert!(error(&short_row).starts_with("t.csv:4: 16 fields where the header names 17"));

    // Line 10 is w2 a1, line 2 w1 a1: making w2 cheaper than w1 breaks monotonicity.
    let non_monotone = edit_line(&good, 10, |l| field(l, 15, "0"));
    let err = error(&non_monotone);
    assert!(
        err.starts_with("t.csv:10: column value: 0 at w2 a1 is below")
            && err.contains("(line 2): a cost must not fall by more than 1% as bits rise"),
        "{err}"
    );

    // A bit pair left out: the table reads, but does not cover the layer.
    let no_pair = edit_line(&good, 10, |_| "# not measured".into());
    let table = MeasuredCosts::parse("t", "t.csv", &no_pair).unwrap();
    let err = table.covers(&ls).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "t.csv: no row at w_bits 2, a_bits 1 of layer 1 (features.1.conv.0.0: depthwise"
        ),
        "{err}"
    );

    assert!(error("").starts_with("t.csv: no header"));
    let header_only = good.lines().next().unwrap().to_string();
    assert!(error(&header_only).starts_with("t.csv: no rows after the header"));
}
