//! User-defined casts: a cast that calls a user function runs it for the caller, explicitly
//! (`x::t`) or when a value is written to a column of the cast's type (assignment context).

use super::catalog::CastInfo;
use super::scope::RelKey;
use super::walker::Walker;
use crate::types::{ObjectRef, Privilege};
use sqlparser::ast::{DataType, Expr, Value};

/// Whether a value reaches its column with no type of its own (a string literal, NULL,
/// DEFAULT): the type's input function reads it, no cast runs.
pub(crate) fn untyped(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(
            v.value,
            Value::SingleQuotedString(_)
                | Value::DollarQuotedString(_)
                | Value::EscapedStringLiteral(_)
                | Value::Null
        ),
        Expr::Identifier(id) => {
            id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default")
        }
        Expr::Nested(e) => untyped(e),
        _ => false,
    }
}

/// `ROW(...)` or `(a, b)`: cast to a composite type field by field, never by a cast function.
fn row_constructor(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => f.name.to_string().eq_ignore_ascii_case("row"),
        Expr::Tuple(_) => true,
        Expr::Nested(e) => row_constructor(e),
        _ => false,
    }
}

/// A type's name as the casts are matched: the last part of a qualified name, lower case,
/// without modifiers, PostgreSQL's aliases spelled as `format_type` spells them.
fn type_key(name: &str) -> String {
    let name = name.split('(').next().unwrap_or(name).trim().to_lowercase();
    let name = name
        .rsplit('.')
        .next()
        .unwrap_or(&name)
        .trim_matches('"')
        .to_string();
    match name.as_str() {
        "int" | "int4" => "integer".into(),
        "int8" => "bigint".into(),
        "int2" => "smallint".into(),
        "float8" | "double" => "double precision".into(),
        "float4" => "real".into(),
        "varchar" => "character varying".into(),
        "bool" => "boolean".into(),
        "decimal" => "numeric".into(),
        _ => name,
    }
}

impl Walker<'_> {
    /// An explicit cast (`x::t`, `CAST(x AS t)`) to a type that a user cast produces: the
    /// cast's function runs for the caller (EXECUTE, bound by OID). A value with no type of
    /// its own needs none; a number only the casts from numeric types, when there are some.
    pub fn explicit_cast(&mut self, operand: &Expr, data_type: &DataType) {
        // A type named with its schema is looked up there: USAGE on the schema.
        if let DataType::Custom(name, _) = data_type {
            let parts = self.name_parts(name);
            if let [.., schema, _] = parts.as_slice() {
                if self.rules.schema_usage && !crate::guard::is_system_schema(schema) {
                    let schema = schema.clone();
                    self.grant(Privilege::Usage, ObjectRef::schema(schema), None);
                }
            }
        }
        let Some(cat) = self.catalog else { return };
        if cat.casts.is_empty() || untyped(operand) || row_constructor(operand) {
            return;
        }
        let target = type_key(&data_type.to_string());
        let candidates: Vec<&CastInfo> = cat
            .casts
            .iter()
            .filter(|c| type_key(&c.target) == target)
            .collect();
        let numeric = matches!(operand, Expr::Value(v) if matches!(v.value, Value::Number(..)));
        let from_numbers: Vec<&CastInfo> = candidates
            .iter()
            .copied()
            .filter(|c| {
                matches!(
                    type_key(&c.source).as_str(),
                    "integer" | "bigint" | "smallint" | "numeric"
                )
            })
            .collect();
        // A cast of a cast: its source type is known.
        let from_known: Vec<&CastInfo> = match operand {
            Expr::Cast {
                data_type: from, ..
            } => {
                let from = type_key(&from.to_string());
                candidates
                    .iter()
                    .copied()
                    .filter(|c| type_key(&c.source) == from)
                    .collect()
            }
            _ => Vec::new(),
        };
        let chosen = if !from_known.is_empty() {
            from_known
        } else if numeric && !from_numbers.is_empty() {
            from_numbers
        } else {
            candidates
        };
        for c in chosen {
            self.cast_runs(c);
        }
    }

    /// Writing `columns` of `key`, each with whether its values are all untyped ([`untyped`]):
    /// the assignment casts to the types of the others run for the caller.
    pub fn assignment_casts(&mut self, key: &RelKey, columns: &[(String, bool)]) {
        let Some(cat) = self.catalog else { return };
        let Some(typed) = cat
            .cast_columns
            .get(&(key.schema.clone(), key.name.clone()))
        else {
            return;
        };
        for (column, untyped) in columns {
            if *untyped {
                continue;
            }
            let Some((_, ty)) = typed.iter().find(|(c, _)| c == column) else {
                continue;
            };
            for c in cat
                .casts
                .iter()
                .filter(|c| &c.target == ty && c.context != 'e')
            {
                self.cast_runs(c);
            }
        }
    }

    fn cast_runs(&mut self, c: &CastInfo) {
        let origin = format!("cast from `{}` to `{}`", c.source, c.target);
        self.within_origin(origin, |w| w.call_for_caller(&c.function));
    }
}
