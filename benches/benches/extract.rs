//! Extraction throughput on a mixed corpus, next to sqlparser's parse alone on the same
//! statements (the floor: extraction cannot be cheaper than parsing). Prints the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, Criterion};
use p0_core::extract::{MySqlExtractor, PostgresExtractor};
use p0_core::PermissionExtractor;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use std::time::{Duration, Instant};

/// The `-- ok:` cases of the project's corpora.
fn corpus(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut keep = false;
    for line in text.lines() {
        if line.starts_with("-- ok:") {
            out.push(String::new());
            keep = true;
        } else if line.starts_with("-- refuse:") {
            keep = false;
        } else if keep {
            if let Some(last) = out.last_mut() {
                last.push_str(line);
                last.push('\n');
            }
        }
    }
    out
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    let pg = corpus(include_str!("../../p0-core/tests/cases/pg.sql"));
    let my = corpus(include_str!("../../p0-core/tests/cases/mysql.sql"));
    let pgx = PostgresExtractor::new().with_database("app");
    let myx = MySqlExtractor::new(Some("shop".into()));
    let mut totals = [(Duration::ZERO, 0u64); 2];
    let mut g = c.benchmark_group("extract_mixed_corpus");
    g.bench_function("floor_sqlparser_parse", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for s in &pg {
                    black_box(Parser::parse_sql(&PostgreSqlDialect {}, s).ok());
                }
                for s in &my {
                    black_box(Parser::parse_sql(&MySqlDialect {}, s).ok());
                }
            }
            let t = start.elapsed();
            totals[0].0 += t;
            totals[0].1 += iters;
            t
        })
    });
    g.bench_function("p0_extract", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for s in &pg {
                    black_box(pgx.extract(s).ok());
                }
                for s in &my {
                    black_box(myx.extract(s).ok());
                }
            }
            let t = start.elapsed();
            totals[1].0 += t;
            totals[1].1 += iters;
            t
        })
    });
    g.finish();
    let n = (pg.len() + my.len()) as f64;
    let per = |(t, i): (Duration, u64)| t.as_secs_f64() * 1e6 / (i.max(1) as f64 * n);
    let (floor, ours) = (per(totals[0]), per(totals[1]));
    println!(
        "\nextraction ({} statements) | parse only (floor) | p0 extract | ratio",
        pg.len() + my.len()
    );
    println!(
        "mean us/statement              | {floor:>18.2} | {ours:>10.2} | {:.2}x",
        ours / floor
    );
    c.final_summary();
}
