//! Reads SQL case files: `-- ok: name` or `-- refuse: name` headers, SQL below each.

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub expect_ok: bool,
    pub sql: String,
}

pub fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- ok: ") {
            cases.push(Case {
                name: name.trim().into(),
                expect_ok: true,
                sql: String::new(),
            });
        } else if let Some(name) = line.strip_prefix("-- refuse: ") {
            cases.push(Case {
                name: name.trim().into(),
                expect_ok: false,
                sql: String::new(),
            });
        } else if let Some(c) = cases.last_mut() {
            c.sql.push_str(line);
            c.sql.push('\n');
        }
    }
    for c in &mut cases {
        c.sql = c.sql.trim().to_string();
    }
    cases
}

/// Counts statements (for the corpus size claim): non-empty pieces between semicolons.
pub fn statements(cases: &[Case]) -> usize {
    cases
        .iter()
        .map(|c| {
            c.sql
                .split(';')
                .filter(|s| !s.trim().is_empty())
                .count()
                .max(1)
        })
        .sum()
}
