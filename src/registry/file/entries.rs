//! Where each service entry of a registry text lies: the byte range of
//! every element of the `services` list, found without decoding it, in
//! JSON and in block-style YAML. What lets a reload decode only the
//! entries that changed (`reload.rs`), and a first load decode the entries
//! on several threads.
//!
//! The scanners are conservative: anything they are not sure of (a
//! `services` key spelled another way, a flow-style YAML list, anchors or
//! tags, which can tie one entry to another) gives `None`, and the text is
//! decoded whole, as before.

/// The format of a registry text, as [`crate::registry::parse::parse`] tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    /// Block-style YAML; the list's items start at this column.
    Yaml {
        indent: usize,
    },
}

/// The entries of a registry text: each one's `start..end`, with `start`
/// on its first byte (JSON: its `{`; YAML: the start of the line of its
/// `-`) and `end` just after its last (JSON: its `}`; YAML: the end of its
/// last line). What lies between two entries (a comma, blank lines,
/// comments) belongs to neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entries {
    pub(super) format: Format,
    pub(super) spans: Vec<(usize, usize)>,
}

/// The entries of `text`, if it is a registry whose services list the
/// scanner can follow and that has at least one.
pub(super) fn find(text: &str) -> Option<Entries> {
    let bytes = text.as_bytes();
    let entries = if text.trim_start().starts_with('{') {
        Entries {
            format: Format::Json,
            spans: json_services(bytes)?,
        }
    } else {
        let (indent, spans) = yaml_services(text)?;
        Entries {
            format: Format::Yaml { indent },
            spans,
        }
    };
    (!entries.spans.is_empty()).then_some(entries)
}

/// The entries of `window`, a run of whole entries of a list in `format`
/// (see [`Entries`]), as ranges of `window` offset by `at`.
pub(super) fn split(window: &str, format: Format, at: usize) -> Option<Vec<(usize, usize)>> {
    let spans = match format {
        Format::Json => json_objects(window.as_bytes())?,
        Format::Yaml { indent } => {
            let (spans, end) = yaml_items(window, indent, 0, window.len())?;
            // Nothing but blank lines and comments may follow the items.
            if lines(window, end, window.len()).any(|(_, line)| !indentation(line).1) {
                return None;
            }
            spans
        }
    };
    Some(spans.into_iter().map(|(s, e)| (s + at, e + at)).collect())
}

/// A cursor over JSON bytes.
struct Scan<'t> {
    t: &'t [u8],
    at: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while matches!(self.t.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.t.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string, the cursor on its opening quote; its content's range.
    fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some((start, self.at - 1));
                }
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
    }

    /// Any value, skipped.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }
}

/// The elements of the top-level `services` list of a JSON document.
fn json_services(text: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut scan = Scan { t: text, at: 0 };
    let mut found = None;
    scan.ws();
    scan.eat(b'{')?;
    scan.ws();
    if scan.eat(b'}').is_some() {
        return None;
    }
    loop {
        scan.ws();
        let (start, end) = scan.string()?;
        scan.ws();
        scan.eat(b':')?;
        scan.ws();
        if &text[start..end] == b"services" {
            if found.is_some() || scan.peek()? != b'[' {
                return None; // twice, or not a list: the decoder says what
            }
            let open = scan.at + 1;
            scan.value()?;
            found = Some(json_objects(&text[open..scan.at - 1])?);
            found = found.map(|spans| {
                spans
                    .into_iter()
                    .map(|(s, e)| (s + open, e + open))
                    .collect()
            });
        } else {
            scan.value()?;
        }
        scan.ws();
        match scan.peek()? {
            b',' => scan.at += 1,
            b'}' => break,
            _ => return None,
        }
    }
    scan.at += 1;
    scan.ws();
    (scan.at == text.len()).then_some(())?;
    found
}

/// The objects of a comma-separated run of JSON objects, with nothing but
/// whitespace around them.
fn json_objects(text: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut scan = Scan { t: text, at: 0 };
    let mut spans = Vec::new();
    scan.ws();
    if scan.peek().is_none() {
        return Some(spans);
    }
    loop {
        scan.ws();
        if scan.peek()? != b'{' {
            return None;
        }
        let start = scan.at;
        scan.value()?;
        spans.push((start, scan.at));
        scan.ws();
        match scan.peek() {
            None => return Some(spans),
            Some(b',') => scan.at += 1,
            Some(_) => return None,
        }
    }
}

/// Whether `text` has nothing that ties one YAML node to another or to the
/// document: anchors and aliases, tags, directives.
fn plain_yaml(text: &str) -> bool {
    !text.bytes().any(|b| matches!(b, b'&' | b'*' | b'!' | b'%'))
}

/// A line's indentation, and whether it is blank or a comment.
fn indentation(line: &str) -> (usize, bool) {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line[indent..].trim_end_matches(['\n', '\r']);
    (indent, rest.is_empty() || rest.starts_with('#'))
}

/// The lines of `text` from byte `from` to `to`, with their start offsets.
fn lines(text: &str, from: usize, to: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut at = from;
    std::iter::from_fn(move || {
        if at >= to {
            return None;
        }
        let end = text[at..to].find('\n').map_or(to, |i| at + i + 1);
        let line = (at, &text[at..end]);
        at = end;
        Some(line)
    })
}

/// Whether `line`, of indentation `indent`, starts a list item there.
fn is_item(line: &str, indent: usize) -> bool {
    let rest = &line[indent..];
    rest.starts_with("- ") || rest.trim_end_matches(['\n', '\r']) == "-"
}

/// The items of the block list under the top-level `services:` key of a
/// YAML document, and the column they start at.
fn yaml_services(text: &str) -> Option<(usize, Vec<(usize, usize)>)> {
    if !plain_yaml(text) || text.contains('\t') {
        return None;
    }
    // `services:`, then nothing or a comment after a space.
    let key = |line: &str| {
        let rest = line.trim_end_matches(['\n', '\r']);
        rest == "services:"
            || rest.strip_prefix("services: ").is_some_and(|after| {
                let after = after.trim_start_matches(' ');
                after.is_empty() || after.starts_with('#')
            })
    };
    let mut keys = lines(text, 0, text.len()).filter(|(_, line)| key(line));
    let (at, line) = keys.next()?;
    if keys.next().is_some() {
        return None;
    }
    let from = at + line.len();
    let (first, indent) = lines(text, from, text.len()).find_map(|(at, line)| {
        let (indent, neutral) = indentation(line);
        (!neutral).then_some((at, indent))
    })?;
    let (spans, _) = yaml_items(text, indent, first, text.len())?;
    Some((indent, spans))
}

/// The items of a block list at column `indent` in `text[from..to]`, which
/// starts on the line of its first item; and where the list ends.
fn yaml_items(
    text: &str,
    indent: usize,
    from: usize,
    to: usize,
) -> Option<(Vec<(usize, usize)>, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut end = from;
    for (at, line) in lines(text, from, to) {
        let (own, neutral) = indentation(line);
        if neutral {
            continue;
        }
        if own == indent && is_item(line, indent) {
            if let Some(last) = spans.last_mut() {
                last.1 = end;
            }
            spans.push((at, at + line.len()));
        } else if own <= indent || spans.is_empty() {
            break; // the list is over
        }
        end = at + line.len();
    }
    let last = spans.last_mut()?;
    last.1 = end;
    Some((spans, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, entries: &Entries) -> Vec<String> {
        entries
            .spans
            .iter()
            .map(|&(s, e)| text[s..e].to_string())
            .collect()
    }

    #[test]
    fn json_entries_are_found() {
        let text = r#" {"clusters": [{"name": "w", "gateways": [{"address": "a"}]}],
  "services": [ {"name": "a", "x": "}]\"{"} ,{"name":"b"}
 ] }
"#;
        let entries = find(text).unwrap();
        assert_eq!(entries.format, Format::Json);
        assert_eq!(
            texts(text, &entries),
            [r#"{"name": "a", "x": "}]\"{"}"#, r#"{"name":"b"}"#]
        );
        assert_eq!(find(r#"{"services": []}"#), None, "no entry");
        assert_eq!(find(r#"{"services": [{}], "services": [{}]}"#), None);
        assert_eq!(find(r#"{"services": [{}, 1]}"#), None, "not an object");
        assert_eq!(find(r#"{"services": [{}]"#), None, "cut short");
    }

    #[test]
    fn yaml_entries_are_found() {
        let text = "clusters:\n  - name: w\nservices: # the list\n  # first\n  - name: a\n    ports:\n      - {name: http}\n\n  - {name: b,\n     namespace: c}\n# the end\nother: 1\n";
        let entries = find(text).unwrap();
        assert_eq!(entries.format, Format::Yaml { indent: 2 });
        assert_eq!(
            texts(text, &entries),
            [
                "  - name: a\n    ports:\n      - {name: http}\n",
                "  - {name: b,\n     namespace: c}\n"
            ]
        );
        let compact = "services:\n- name: a\n  namespace: b\n- name: c\n";
        assert_eq!(
            texts(compact, &find(compact).unwrap()),
            ["- name: a\n  namespace: b\n", "- name: c\n"]
        );
        for refused in [
            "services: [{name: a}]\n",
            "services:\n  - &x {name: a}\n  - *x\n",
            "services:\n  - !!map {name: a}\n",
            "services:\n  - a\nservices:\n  - b\n",
            "\"services\":\n  - a\n",
        ] {
            assert_eq!(find(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_window_of_entries_is_split() {
        let window = r#"{"name": "a"} , {"name": "b"}"#;
        assert_eq!(
            split(window, Format::Json, 10),
            Some(vec![(10, 23), (26, 39)])
        );
        assert_eq!(split(r#"{"a": 1},"#, Format::Json, 0), None);
        let window = "  - name: a\n  - name: b\n    namespace: c\n";
        assert_eq!(
            split(window, Format::Yaml { indent: 2 }, 0),
            Some(vec![(0, 12), (12, 41)])
        );
        assert_eq!(
            split("  - a\nkey: 1\n", Format::Yaml { indent: 2 }, 0),
            None
        );
    }
}
