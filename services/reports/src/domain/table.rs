//! A report's table and its protection against re-identification.
//!
//! Primary suppression hides every count from 1 to the threshold minus one, and every
//! measure (a mean, a median, a share) computed over fewer participants than the threshold.
//! Secondary suppression then walks the table's additive relations (a column's rows add up
//! to its total row, the parts of a row add up to the row's whole): wherever exactly one
//! cell of a relation is hidden, it could be recovered by subtraction, so one more is
//! hidden, the smallest non-zero one, until no relation has exactly one hidden cell. A
//! report narrowed to one municipality is cut from the protected programme table, so the
//! same cell is hidden in every report that shows it and two reports cannot be differenced
//! to recover it.

use serde::Serialize;

/// How a withheld cell reads: the same for a small count and for one hidden beside it, so
/// the report does not say which is which.
pub const WITHHELD: &str = "x";

/// What a cell holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number of participants, needs, stays, ...
    Count(u64),
    /// A figure computed over `base` participants (or stays, or interventions); `None` when
    /// there was nothing to compute it over.
    Measure {
        /// The figure.
        value: Option<f64>,
        /// Decimals shown.
        decimals: usize,
        /// How many it was computed over.
        base: u64,
    },
    /// A figure about no participant (a target, a label).
    Text(String),
}

/// One cell and whether it is withheld.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The value.
    pub value: Value,
    /// Withheld from the report.
    pub suppressed: bool,
}

impl Cell {
    /// A count.
    pub fn count(value: u64) -> Self {
        Self {
            value: Value::Count(value),
            suppressed: false,
        }
    }

    /// A measure over `base`.
    pub fn measure(value: Option<f64>, decimals: usize, base: u64) -> Self {
        Self {
            value: Value::Measure {
                value,
                decimals,
                base,
            },
            suppressed: false,
        }
    }

    /// Text.
    pub fn text(value: impl Into<String>) -> Self {
        Self {
            value: Value::Text(value.into()),
            suppressed: false,
        }
    }

    fn as_count(&self) -> Option<u64> {
        match self.value {
            Value::Count(n) => Some(n),
            _ => None,
        }
    }

    /// The cell as the report shows it; a withheld one reads [`WITHHELD`].
    pub fn render(&self) -> String {
        if self.suppressed {
            return WITHHELD.to_owned();
        }
        match &self.value {
            Value::Count(n) => n.to_string(),
            Value::Measure {
                value: Some(v),
                decimals,
                ..
            } => format!("{v:.decimals$}"),
            Value::Measure { value: None, .. } => "-".to_owned(),
            Value::Text(text) => text.clone(),
        }
    }
}

/// A row: a label, the municipality it belongs to (for narrowing), its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The first column.
    pub label: String,
    /// The municipality whose residents the row counts, when it counts only theirs.
    pub municipality: Option<String>,
    /// One per column after the label.
    pub cells: Vec<Cell>,
}

/// Cells that add up: the members' sum is the total (row, column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The parts.
    pub members: Vec<(usize, usize)>,
    /// Their sum.
    pub total: (usize, usize),
}

/// A report's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, the label column first.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Row>,
    /// What adds up.
    pub relations: Vec<Relation>,
    /// What the figures mean and what they cannot show.
    pub notes: Vec<String>,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
            relations: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds, for each of `columns` (cell indexes), the relation "rows `parts` add up to row
    /// `total`".
    pub fn columns_add_up(&mut self, columns: &[usize], parts: &[usize], total: usize) {
        for &column in columns {
            self.relations.push(Relation {
                members: parts.iter().map(|&row| (row, column)).collect(),
                total: (total, column),
            });
        }
    }

    /// Adds, for each row, the relation "cells `parts` add up to cell `whole`".
    pub fn rows_add_up(&mut self, parts: &[usize], whole: usize) {
        for row in 0..self.rows.len() {
            self.relations.push(Relation {
                members: parts.iter().map(|&column| (row, column)).collect(),
                total: (row, whole),
            });
        }
    }

    fn cell(&self, (row, column): (usize, usize)) -> Option<&Cell> {
        self.rows.get(row)?.cells.get(column)
    }

    fn cell_mut(&mut self, (row, column): (usize, usize)) -> Option<&mut Cell> {
        self.rows.get_mut(row)?.cells.get_mut(column)
    }

    /// Suppresses small cells, then enough others that no relation gives one of them away.
    pub fn protect(&mut self, threshold: u32) {
        let threshold = u64::from(threshold);
        for row in &mut self.rows {
            for cell in &mut row.cells {
                cell.suppressed = match cell.value {
                    Value::Count(n) => n > 0 && n < threshold,
                    Value::Measure { base, .. } => base > 0 && base < threshold,
                    Value::Text(_) => false,
                };
            }
        }
        // Each pass hides at least one more cell or stops; the table is finite.
        loop {
            let mut changed = false;
            for index in 0..self.relations.len() {
                let relation = self.relations[index].clone();
                let all: Vec<(usize, usize)> = relation
                    .members
                    .iter()
                    .copied()
                    .chain(std::iter::once(relation.total))
                    .collect();
                let hidden = all
                    .iter()
                    .filter(|at| self.cell(**at).is_some_and(|c| c.suppressed))
                    .count();
                if hidden != 1 {
                    continue;
                }
                if let Some(at) = self.partner(&relation)
                    && let Some(cell) = self.cell_mut(at)
                {
                    cell.suppressed = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The cell to hide beside a relation's one hidden cell: the smallest non-zero member,
    /// else the total, else any zero member.
    fn partner(&self, relation: &Relation) -> Option<(usize, usize)> {
        let visible = |at: &(usize, usize)| {
            self.cell(*at)
                .filter(|c| !c.suppressed)
                .and_then(Cell::as_count)
                .map(|n| (*at, n))
        };
        let members: Vec<((usize, usize), u64)> =
            relation.members.iter().filter_map(visible).collect();
        members
            .iter()
            .filter(|(_, n)| *n > 0)
            .min_by_key(|(_, n)| *n)
            .map(|(at, _)| *at)
            .or_else(|| visible(&relation.total).map(|(at, _)| at))
            .or_else(|| members.first().map(|(at, _)| *at))
    }

    /// Keeps the rows of `municipality` only (after protection: the hidden cells stay hidden).
    pub fn narrow_to(&mut self, municipality: &str) {
        self.rows
            .retain(|row| row.municipality.as_deref() == Some(municipality));
        self.relations.clear();
    }

    /// The rows as the report shows them: label first.
    pub fn rendered(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|row| {
                std::iter::once(row.label.clone())
                    .chain(row.cells.iter().map(Cell::render))
                    .collect()
            })
            .collect()
    }
}

/// RFC 4180 CSV: a header line, then one line per row, CRLF line ends.
pub fn to_csv(columns: &[String], rows: &[Vec<String>]) -> String {
    fn field(value: &str) -> String {
        if value.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value.to_owned()
        }
    }
    let mut out = String::new();
    for line in std::iter::once(columns).chain(rows.iter().map(Vec::as_slice)) {
        let fields: Vec<String> = line.iter().map(|v| field(v)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The JSON document of a report.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// The report's kind code.
    pub kind: &'a str,
    /// The year.
    pub year: i32,
    /// "programme" or a municipality code.
    pub scope: &'a str,
    /// The suppression threshold.
    pub suppression_threshold: u32,
    /// Column names.
    pub columns: &'a [String],
    /// Rows, label first, as shown.
    pub rows: &'a [Vec<String>],
    /// Notes.
    pub notes: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Municipalities A, B, C and a total; one count column.
    fn column(values: [u64; 3]) -> Table {
        let mut table = Table::new(&["municipality", "enrolled"]);
        for (label, n) in ["A", "B", "C"].into_iter().zip(values) {
            table.rows.push(Row {
                label: label.into(),
                municipality: Some(label.into()),
                cells: vec![Cell::count(n)],
            });
        }
        table.rows.push(Row {
            label: "total".into(),
            municipality: None,
            cells: vec![Cell::count(values.iter().sum())],
        });
        table.columns_add_up(&[0], &[0, 1, 2], 3);
        table
    }

    fn hidden(table: &Table) -> Vec<bool> {
        table.rows.iter().map(|r| r.cells[0].suppressed).collect()
    }

    #[test]
    fn a_small_cell_and_the_smallest_other_are_hidden() {
        let mut table = column([3, 20, 12]);
        table.protect(5);
        assert_eq!(hidden(&table), [true, false, true, false]);
    }

    #[test]
    fn zero_is_shown_and_large_cells_are_left_alone() {
        let mut table = column([0, 20, 12]);
        table.protect(5);
        assert_eq!(hidden(&table), [false; 4]);
    }

    #[test]
    fn two_small_cells_protect_each_other() {
        let mut table = column([2, 3, 12]);
        table.protect(5);
        assert_eq!(hidden(&table), [true, true, false, false]);
    }

    #[test]
    fn a_small_total_hides_a_part_too() {
        // 0 + 0 + 4: the total is small, and the only non-zero part equals it.
        let mut table = column([0, 0, 4]);
        table.protect(5);
        assert!(table.rows[2].cells[0].suppressed && table.rows[3].cells[0].suppressed);
    }

    #[test]
    fn rows_and_columns_together_never_leave_one_hidden_cell_in_a_relation() {
        // parts a + b = whole, per municipality; every column adds up to the total row.
        let mut table = Table::new(&["municipality", "whole", "a", "b"]);
        let data = [[10, 7, 3], [12, 6, 6], [30, 20, 10]];
        for (i, [w, a, b]) in data.into_iter().enumerate() {
            table.rows.push(Row {
                label: i.to_string(),
                municipality: Some(i.to_string()),
                cells: vec![Cell::count(w), Cell::count(a), Cell::count(b)],
            });
        }
        table.rows.push(Row {
            label: "total".into(),
            municipality: None,
            cells: vec![Cell::count(52), Cell::count(33), Cell::count(19)],
        });
        table.columns_add_up(&[0, 1, 2], &[0, 1, 2], 3);
        table.rows_add_up(&[1, 2], 0);
        table.protect(5);
        assert!(table.rows[0].cells[2].suppressed);
        for relation in &table.relations {
            let hidden = relation
                .members
                .iter()
                .chain(std::iter::once(&relation.total))
                .filter(|(r, c)| table.rows[*r].cells[*c].suppressed)
                .count();
            assert_ne!(hidden, 1, "{relation:?}");
        }
    }

    #[test]
    fn measures_over_few_are_hidden() {
        let mut table = Table::new(&["indicator", "value"]);
        table.rows.push(Row {
            label: "median".into(),
            municipality: None,
            cells: vec![Cell::measure(Some(12.0), 1, 4)],
        });
        table.protect(5);
        assert_eq!(table.rendered(), [["median", "x"]]);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let csv = to_csv(
            &["a".into(), "b".into()],
            &[vec!["x,y".into(), "say \"hi\"".into()]],
        );
        assert_eq!(csv, "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n");
    }
}
