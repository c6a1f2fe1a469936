//! Paths into a registry document and the ways a node under test is
//! decoded: what the search for every problem ([`super::isolate`]) and its
//! deserializer ([`super::focused`]) both speak.

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The path written the way problems show it: `ports[1].number`.
pub fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// How the node under test is decoded.
#[derive(Clone, Copy)]
pub enum Mode<'f> {
    /// As it is.
    Whole,
    /// Its fields replaced by stand-ins, and the given fields added as
    /// stand-ins too: what fails is a field it lacks.
    Shape(&'f [&'static str]),
}
