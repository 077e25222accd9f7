//! Where things are in the config text: field paths ↔ lines and columns.
//!
//! Validation speaks in field paths (`queue[1].steps[2].after_s`); people read line numbers. This
//! module owns the translation both ways, over the span-preserving `toml_edit` document, so the
//! checks never deal with byte offsets. It never judges a value; it only finds it.

use std::fmt;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

use super::ConfigError;

/// One step of a field path: a key in a table, or an index in an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A dotted field path such as `queue[1].steps[2].after_s` (indices are 0-based, as in the file's
/// arrays).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Segment>);

impl FieldPath {
    pub(crate) fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path extended by a key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    /// The rest of this path below `prefix` (`steps[0].tiers` of `queue[1].steps[0].tiers`
    /// below `queue[1]`), if it goes below it.
    pub(crate) fn below(&self, prefix: &FieldPath) -> Option<&[Segment]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    /// The path made of these segments.
    pub(crate) fn of(segments: &[Segment]) -> Self {
        FieldPath(segments.to_vec())
    }

    /// How many segments it has (`queue[1].steps` has 3).
    pub(crate) fn depth(&self) -> usize {
        self.0.len()
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// The path a field name written by `Display` names (`agents[0].shifts[1].login_s`); `None`
    /// for an empty name or an index that is not a number.
    pub(crate) fn parse(field: &str) -> Option<Self> {
        if field.is_empty() {
            return None;
        }
        let mut path = FieldPath::root();
        for part in field.split('.') {
            let (key, mut rest) = part.split_once('[').unwrap_or((part, ""));
            if !key.is_empty() {
                path = path.key(key);
            }
            while let Some((n, after)) = rest.split_once(']') {
                path = path.index(n.parse().ok()?);
                rest = after.strip_prefix('[').unwrap_or(after);
            }
        }
        Some(path)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Finds fields of one parsed config text and turns problems into located `ConfigError`s.
pub(crate) struct Locator<'a> {
    origin: &'a str,
    text: &'a str,
    doc: &'a ImDocument<&'a str>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(origin: &'a str, text: &'a str, doc: &'a ImDocument<&'a str>) -> Self {
        Locator { origin, text, doc }
    }

    /// An error about the field at `path`, located at the field's key (or, when the field is
    /// absent from the file, at the nearest enclosing thing that is present).
    pub(crate) fn error(&self, path: &FieldPath, message: impl Into<String>) -> ConfigError {
        let offset = self.span_of(path).map(|s| s.start);
        self.error_at(offset, path.to_string(), message)
    }

    /// An error at a byte offset of the text, with an explicit field name.
    pub(crate) fn error_at(
        &self,
        offset: Option<usize>,
        field: String,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match offset {
            Some(o) => {
                let (l, c) = line_col(self.text, o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.origin.to_string(),
            line,
            column,
            field,
            message: message.into(),
        }
    }

    /// The span to point at for `path`: the key of the deepest segment that exists.
    fn span_of(&self, path: &FieldPath) -> Option<Range<usize>> {
        let mut best: Option<Range<usize>> = None;
        let mut at = Node::Item(self.doc.as_item());
        for seg in &path.0 {
            let Some((span, node)) = child(at, seg) else {
                break;
            };
            if span.is_some() {
                best = span;
            }
            at = node;
        }
        best
    }

    /// The datetime written at `path`, as written (`1979-05-27`), if the value there is one.
    pub(crate) fn datetime_at(&self, path: &FieldPath) -> Option<String> {
        let mut at = Node::Item(self.doc.as_item());
        for seg in &path.0 {
            at = child(at, seg)?.1;
        }
        match at {
            Node::Item(Item::Value(Value::Datetime(d))) | Node::Value(Value::Datetime(d)) => {
                Some(d.value().to_string())
            }
            _ => None,
        }
    }

    /// The field path of the innermost key or value containing `offset` (for errors reported by
    /// the deserializer, which only know a position).
    pub(crate) fn path_at(&self, offset: usize) -> FieldPath {
        let mut path = FieldPath::root();
        find_in_table(self.doc.as_table(), offset, &mut path);
        path
    }
}

#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Value(&'d Value),
    Table(&'d Table),
}

/// One segment down from `at`: the span of the key (or element) and what is there.
fn child<'d>(at: Node<'d>, seg: &Segment) -> Option<(Option<Range<usize>>, Node<'d>)> {
    match (seg, at) {
        (Segment::Key(k), Node::Item(Item::Table(t))) => table_child(t, k),
        (Segment::Key(k), Node::Item(Item::Value(Value::InlineTable(t))))
        | (Segment::Key(k), Node::Value(Value::InlineTable(t))) => t
            .get_key_value(k)
            .map(|(key, item)| (key.span(), Node::Item(item))),
        (Segment::Index(i), Node::Item(Item::ArrayOfTables(a))) => {
            a.get(*i).map(|t| (t.span(), Node::Table(t)))
        }
        (Segment::Index(i), Node::Item(Item::Value(Value::Array(a))))
        | (Segment::Index(i), Node::Value(Value::Array(a))) => {
            a.get(*i).map(|v| (v.span(), Node::Value(v)))
        }
        (Segment::Key(k), Node::Table(t)) => table_child(t, k),
        _ => None,
    }
}

fn table_child<'d>(t: &'d Table, k: &str) -> Option<(Option<Range<usize>>, Node<'d>)> {
    t.get_key_value(k)
        .map(|(key, item)| (key.span(), Node::Item(item)))
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

/// A table or an inline table: a key's span, or a place inside its value.
fn find_in_table(t: &dyn TableLike, offset: usize, path: &mut FieldPath) -> bool {
    for (name, _) in t.iter() {
        let Some((key, item)) = t.get_key_value(name) else {
            continue;
        };
        let here = path.key(name);
        if contains(key.span(), offset) {
            *path = here;
            return true;
        }
        let mut inner = here.clone();
        if find_in_item(item, offset, &mut inner) {
            *path = inner;
            return true;
        }
    }
    false
}

fn find_in_item(item: &Item, offset: usize, path: &mut FieldPath) -> bool {
    match item {
        Item::None => false,
        Item::Table(t) => find_in_table(t, offset, path) || contains(t.span(), offset),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let mut inner = path.index(i);
                if find_in_table(t, offset, &mut inner) || contains(t.span(), offset) {
                    *path = inner;
                    return true;
                }
            }
            false
        }
        Item::Value(v) => find_in_value(v, offset, path),
    }
}

fn find_in_value(v: &Value, offset: usize, path: &mut FieldPath) -> bool {
    match v {
        Value::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                let mut inner = path.index(i);
                if find_in_value(elem, offset, &mut inner) {
                    *path = inner;
                    return true;
                }
            }
            contains(v.span(), offset)
        }
        Value::InlineTable(t) => find_in_table(t, offset, path) || contains(v.span(), offset),
        _ => contains(v.span(), offset),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A byte order mark starting the file is not a column an editor shows.
    let line_text = before.get(line_start..).unwrap_or("");
    let line_text = if line_start == 0 {
        line_text.strip_prefix('\u{feff}').unwrap_or(line_text)
    } else {
        line_text
    };
    let column = line_text.chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[defaults]\nsla_s = 30\n\n[[queue]]\nid = \"a\"\n\n[[queue]]\nid = \"b\"\nsteps = [\n  { after_s = 0, tiers = [1] },\n  { after_s = 5, tiers = [2] },\n]\n";

    fn doc() -> ImDocument<&'static str> {
        ImDocument::parse(TEXT).unwrap()
    }

    #[test]
    fn a_nested_step_field_is_found_on_its_own_line() {
        let d = doc();
        let loc = Locator::new("t.toml", TEXT, &d);
        let path = FieldPath::root()
            .key("queue")
            .index(1)
            .key("steps")
            .index(1)
            .key("after_s");
        let e = loc.error(&path, "x");
        assert_eq!((e.line, e.column), (Some(11), Some(5)));
        assert_eq!(e.field, "queue[1].steps[1].after_s");
    }

    #[test]
    fn a_missing_field_points_at_its_table() {
        let d = doc();
        let loc = Locator::new("t.toml", TEXT, &d);
        let e = loc.error(&FieldPath::root().key("queue").index(0).key("steps"), "x");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn an_offset_maps_back_to_its_field_path() {
        let d = doc();
        let loc = Locator::new("t.toml", TEXT, &d);
        let offset = TEXT.find("after_s = 5").unwrap();
        assert_eq!(loc.path_at(offset).to_string(), "queue[1].steps[1].after_s");
        let offset = TEXT.find("30").unwrap();
        assert_eq!(loc.path_at(offset).to_string(), "defaults.sla_s");
    }

    #[test]
    fn a_field_name_parses_back_to_its_path() {
        let path = FieldPath::root()
            .key("agents")
            .index(0)
            .key("shifts")
            .index(12)
            .key("login_s");
        assert_eq!(FieldPath::parse(&path.to_string()), Some(path));
        let nested = FieldPath::root().key("m").index(1).index(2);
        assert_eq!(FieldPath::parse("m[1][2]"), Some(nested));
        assert_eq!(FieldPath::parse(""), None);
        assert_eq!(FieldPath::parse("queue[x]"), None);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_col("é = 1\nab", 7), (2, 1));
        assert_eq!(line_col("ü=1", 2), (1, 2));
    }
}
