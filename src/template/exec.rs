//! Executing a parsed template (`Execute` of pongo2's nodes, `variableResolver.resolve`, the
//! expression evaluators), bounded: output size, steps and the bytes filters build are counted.

use super::error::{Kind, RenderError};
use super::filters::{self, FilterError};
use super::lexer::Token;
use super::parser::{Expr, Node, Op, Part, VarPart};
use super::value::{equal_value, less, s, LoopInfo, Map, Val, V};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The most bytes a rendered template may have (LXD has no bound).
pub const MAX_OUTPUT: usize = 16 << 20;
/// The most nodes executed and loop iterations, together.
pub const MAX_STEPS: u64 = 2_000_000;
/// The most bytes filters may build over a whole rendering.
pub const MAX_WORK: usize = 256 << 20;

pub(crate) struct Exec<'a> {
    pub public: &'a BTreeMap<String, V>,
    pub config: &'a BTreeMap<String, String>,
    pub out: String,
    pub steps: u64,
    pub work: usize,
    pub notes: Vec<String>,
}

#[derive(Clone)]
pub(crate) struct Scope {
    pub private: HashMap<String, Val>,
    pub autoescape: bool,
}

type R<T> = Result<T, RenderError>;

fn exec_error(msg: impl Into<String>, tok: Option<&Token>) -> RenderError {
    let e = RenderError::new(Kind::Execution, "execution", msg);
    match tok {
        Some(t) => e.near(t),
        None => e,
    }
}

fn panic_error(msg: String, tok: Option<&Token>) -> RenderError {
    let mut e = RenderError::new(Kind::Execution, "panic", msg);
    if let Some(t) = tok {
        e = e.at(t.line, t.col);
    }
    e
}

impl Exec<'_> {
    fn write(&mut self, text: &str) -> R<()> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return Err(RenderError::limit(format!(
                "the rendered file would be over {MAX_OUTPUT} bytes; lxdimg stops there"
            )));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(RenderError::limit(format!(
                "rendering took over {MAX_STEPS} steps (nodes and loop iterations); lxdimg stops there"
            )));
        }
        Ok(())
    }

    fn note(&mut self, text: &str) {
        if !self.notes.iter().any(|n| n == text) {
            self.notes.push(text.to_string());
        }
    }

    pub fn nodes(&mut self, nodes: &[Node], scope: &mut Scope) -> R<()> {
        for n in nodes {
            self.step()?;
            self.node(n, scope)?;
        }
        Ok(())
    }

    fn node(&mut self, n: &Node, scope: &mut Scope) -> R<()> {
        match n {
            Node::Html {
                text,
                trim_left,
                trim_right,
            } => {
                let sp: &[char] = &[' ', '\n', '\r', '\t'];
                let mut t = text.as_str();
                if *trim_left {
                    t = t.trim_start_matches(sp);
                }
                if *trim_right {
                    t = t.trim_end_matches(sp);
                }
                self.write(t)
            }
            Node::Var(e) => {
                let mut v = self.eval(e, scope)?;
                if !e.filter_applied("safe") && !v.safe && v.v.is_string() && scope.autoescape {
                    v = Val::from(s(filters::escape(&v.v.string())));
                }
                self.write(&v.v.string())
            }
            Node::If { conds, wrappers } => {
                for (i, c) in conds.iter().enumerate() {
                    if self.eval(c, scope)?.v.is_true() {
                        return self.nodes(&wrappers[i], scope);
                    }
                    if conds.len() == i + 1 && wrappers.len() > i + 1 {
                        return self.nodes(&wrappers[i + 1], scope);
                    }
                }
                Ok(())
            }
            Node::For {
                key,
                value,
                expr,
                reversed,
                sorted,
                body,
                empty,
            } => self.for_loop(
                key,
                value.as_deref(),
                expr,
                *reversed,
                *sorted,
                body,
                empty.as_deref(),
                scope,
            ),
            Node::Autoescape { on, body } => {
                let old = scope.autoescape;
                scope.autoescape = *on;
                self.nodes(body, scope)?;
                scope.autoescape = old;
                Ok(())
            }
            Node::Nothing => Ok(()),
            Node::Set { name, expr } => {
                let v = self.eval(expr, scope)?;
                scope.private.insert(name.clone(), v);
                Ok(())
            }
            Node::With { pairs, body } => {
                let mut child = scope.clone();
                for (k, e) in pairs {
                    let v = self.eval(e, scope)?;
                    child.private.insert(k.clone(), v);
                }
                self.nodes(body, &mut child)
            }
            Node::Firstof(args) => {
                for a in args {
                    let v = self.eval(a, scope)?;
                    if v.v.is_true() {
                        let mut text = v.v.string();
                        if scope.autoescape && !a.filter_applied("safe") {
                            text = filters::escape(&text);
                        }
                        return self.write(&text);
                    }
                }
                Ok(())
            }
            Node::Text(t) => self.write(t),
            Node::IfEqual {
                negate,
                a,
                b,
                then,
                other,
            } => {
                let x = self.eval(a, scope)?;
                let y = self.eval(b, scope)?;
                let eq = equal_value(&x.v, &y.v).map_err(|m| panic_error(m, None))?;
                if eq != *negate {
                    self.nodes(then, scope)
                } else if let Some(o) = other {
                    self.nodes(o, scope)
                } else {
                    Ok(())
                }
            }
            Node::Filter { tok, calls, body } => {
                let outer = std::mem::take(&mut self.out);
                let r = self.nodes(body, scope);
                let inner = std::mem::replace(&mut self.out, outer);
                r?;
                let mut v = Val::from(s(inner));
                for (name, param) in calls {
                    let p = match param {
                        Some(e) => self.eval(e, scope)?,
                        None => Val::from(V::Nil),
                    };
                    v = match filters::apply(name, &v, &p) {
                        Ok(v) => v,
                        Err(FilterError::Pongo(sender, msg)) => {
                            return Err(exec_error(
                                format!("[Error (where: {sender})] {msg}"),
                                Some(tok),
                            ))
                        }
                        Err(e) => return Err(self.filter_error(e, tok)),
                    };
                    self.count_work(&v, tok)?;
                }
                self.write(&v.v.string())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn for_loop(
        &mut self,
        key: &str,
        value: Option<&str>,
        expr: &Expr,
        reversed: bool,
        sorted: bool,
        body: &[Node],
        empty: Option<&[Node]>,
        scope: &mut Scope,
    ) -> R<()> {
        let mut child = scope.clone();
        let parent = match child.private.get("forloop").map(|v| &v.v) {
            Some(V::Loop(l)) => Some(l.clone()),
            _ => None,
        };
        let info = Rc::new(RefCell::new(LoopInfo {
            first: true,
            parent,
            ..Default::default()
        }));
        child
            .private
            .insert("forloop".into(), Val::from(V::Loop(info.clone())));
        let obj = self.eval(expr, &mut child)?;
        // (index given to the loop, count, key, value)
        let items: Vec<(i64, i64, V, Option<V>)> = match &obj.v {
            V::Map(m) => {
                if !sorted && m.entries.len() > 1 {
                    self.note("a {% for %} over a map without `sorted`: LXD (Go) visits the keys in a different random order each time; shown here in sorted order");
                }
                let n = m.entries.len() as i64;
                let mut list: Vec<(String, V)> = m
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if sorted && reversed {
                    list.reverse();
                }
                list.into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| (i as i64, n, s(k), Some(v)))
                    .collect()
            }
            V::List(l) => {
                let mut list: Vec<V> = l.to_vec();
                if sorted {
                    list.sort_by(|a, b| {
                        if less(a, b) {
                            std::cmp::Ordering::Less
                        } else if less(b, a) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    });
                    if reversed {
                        list.reverse();
                    }
                } else if reversed {
                    list.reverse();
                }
                let n = list.len() as i64;
                list.into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64, n, v, None))
                    .collect()
            }
            V::Str(text) => {
                if sorted {
                    return Err(panic_error(
                        "TODO: handle sort for type string".into(),
                        None,
                    ));
                }
                let bytes = text.as_bytes();
                if !text.is_ascii() {
                    self.note("a {% for %} over a string with non-ASCII characters: pongo2 visits its bytes, not its characters; bytes that are not whole characters are shown as U+FFFD here");
                }
                let n = bytes.len() as i64;
                let piece = |i: usize| s(String::from_utf8_lossy(&bytes[i..i + 1]).into_owned());
                if reversed {
                    (0..bytes.len())
                        .rev()
                        .map(|i| (i as i64, n, piece(i), None))
                        .collect()
                } else {
                    (0..bytes.len())
                        .map(|i| (i as i64, n, piece(i), None))
                        .collect()
                }
            }
            _ => Vec::new(),
        };
        if items.is_empty() {
            if let Some(e) = empty {
                return self.nodes(e, &mut child);
            }
            return Ok(());
        }
        for (idx, count, k, v) in items {
            self.step()?;
            child.private.insert(key.to_string(), Val::from(k));
            if let (Some(name), Some(v)) = (value, v) {
                child.private.insert(name.to_string(), Val::from(v));
            }
            {
                let mut l = info.borrow_mut();
                l.counter = idx + 1;
                l.counter0 = idx;
                if idx == 1 {
                    l.first = false;
                }
                if idx + 1 == count {
                    l.last = true;
                }
                l.revcounter = count - idx;
                l.revcounter0 = count - (idx + 1);
            }
            self.nodes(body, &mut child)?;
        }
        Ok(())
    }

    fn filter_error(&self, e: FilterError, tok: &Token) -> RenderError {
        match e {
            FilterError::Pongo(sender, msg) => {
                let mut e = RenderError::new(Kind::Execution, &sender, msg).near(tok);
                e.named = false;
                e
            }
            FilterError::Panic(msg) => panic_error(msg, Some(tok)),
            FilterError::Unsupported(msg) => RenderError::unsupported(msg).near(tok),
            FilterError::Limit(msg) => RenderError::limit(msg).near(tok),
        }
    }

    fn count_work(&mut self, v: &Val, tok: &Token) -> R<()> {
        if let V::Str(t) = &v.v {
            self.work += t.len();
        }
        if self.work > MAX_WORK {
            return Err(RenderError::limit(format!(
                "filters built over {MAX_WORK} bytes in this rendering; lxdimg stops there"
            ))
            .near(tok));
        }
        Ok(())
    }

    pub fn eval(&mut self, e: &Expr, scope: &mut Scope) -> R<Val> {
        Ok(match e {
            Expr::Str(t) => Val::from(s(t.as_str())),
            Expr::Int(i) => Val::from(V::Int(*i)),
            Expr::Float(f) => Val::from(V::Float(*f)),
            Expr::Bool(b) => Val::from(V::Bool(*b)),
            Expr::Var { tok, parts } => self.resolve(tok, parts, scope)?,
            Expr::Filtered {
                base,
                filters: calls,
            } => {
                let mut v = self.eval(base, scope)?;
                for fc in calls {
                    let p = match &fc.param {
                        Some(e) => self.eval(e, scope)?,
                        None => Val::from(V::Nil),
                    };
                    v = filters::apply(&fc.name, &v, &p)
                        .map_err(|e| self.filter_error(e, &fc.tok))?;
                    self.count_work(&v, &fc.tok)?;
                }
                v
            }
            Expr::Logic { op, a, b, .. } => {
                let x = self.eval(a, scope)?;
                let r = match (op, x.v.is_true()) {
                    (Op::And, false) => false,
                    (Op::Or, true) => true,
                    _ => self.eval(b, scope)?.v.is_true(),
                };
                Val::from(V::Bool(r))
            }
            Expr::Rel { op, tok, a, b } => {
                let x = self.eval(a, scope)?.v;
                let y = self.eval(b, scope)?.v;
                let either_float = x.is_float() || y.is_float();
                let r = match op {
                    Op::Le if either_float => x.float() <= y.float(),
                    Op::Ge if either_float => x.float() >= y.float(),
                    Op::Gt if either_float => x.float() > y.float(),
                    Op::Lt if either_float => x.float() < y.float(),
                    Op::Le => x.integer() <= y.integer(),
                    Op::Ge => x.integer() >= y.integer(),
                    Op::Gt => x.integer() > y.integer(),
                    Op::Lt => x.integer() < y.integer(),
                    Op::Eq => equal_value(&x, &y).map_err(|m| panic_error(m, Some(tok)))?,
                    Op::Ne => !equal_value(&x, &y).map_err(|m| panic_error(m, Some(tok)))?,
                    Op::In => {
                        if let V::Str(h) = &y {
                            self.work += h.len();
                        }
                        y.contains(&x).map_err(|m| panic_error(m, Some(tok)))?
                    }
                    _ => unreachable!("relational operators only"),
                };
                Val::from(V::Bool(r))
            }
            Expr::Simple {
                negate,
                neg_sign,
                pos,
                a,
                b,
            } => {
                let mut r = self.eval(a, scope)?;
                if *negate {
                    r = Val::from(r.v.negate());
                }
                if *neg_sign {
                    r = Val::from(match r.v {
                        V::Float(f) => V::Float(-f),
                        V::Int(i) => V::Int(i.wrapping_neg()),
                        _ => {
                            return Err(exec_error(
                                "Negative sign on a non-number expression",
                                pos.as_ref(),
                            ))
                        }
                    });
                }
                if let Some((op, _, t2)) = b {
                    let y = self.eval(t2, scope)?.v;
                    let x = &r.v;
                    r = Val::from(if x.is_float() || y.is_float() {
                        V::Float(if *op == Op::Add {
                            x.float() + y.float()
                        } else {
                            x.float() - y.float()
                        })
                    } else if *op == Op::Add {
                        V::Int(x.integer().wrapping_add(y.integer()))
                    } else {
                        V::Int(x.integer().wrapping_sub(y.integer()))
                    });
                }
                r
            }
            Expr::Term { op, tok, a, b } => {
                let x = self.eval(a, scope)?.v;
                let y = self.eval(b, scope)?.v;
                let fl = x.is_float() || y.is_float();
                Val::from(match op {
                    Op::Mul if fl => V::Float(x.float() * y.float()),
                    Op::Mul => V::Int(x.integer().wrapping_mul(y.integer())),
                    Op::Div if fl => V::Float(x.float() / y.float()),
                    Op::Div | Op::Mod => {
                        let d = y.integer();
                        if d == 0 {
                            return Err(panic_error(
                                "runtime error: integer divide by zero".into(),
                                Some(tok),
                            ));
                        }
                        V::Int(if *op == Op::Div {
                            x.integer().wrapping_div(d)
                        } else {
                            x.integer().wrapping_rem(d)
                        })
                    }
                    _ => unreachable!("term operators only"),
                })
            }
            Expr::Pow { a, b } => {
                let x = self.eval(a, scope)?.v;
                let y = self.eval(b, scope)?.v;
                Val::from(V::Float(x.float().powf(y.float())))
            }
        })
    }

    fn resolve(&mut self, tok: &Token, parts: &[VarPart], scope: &mut Scope) -> R<Val> {
        let name = || {
            parts
                .iter()
                .map(|p| match &p.part {
                    Part::Ident(s) => s.clone(),
                    Part::Int(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        let fail = |msg: String| exec_error(msg, Some(tok));
        let nil = Val::from(V::Nil);
        let mut cur = V::Nil;
        let mut safe = false;
        for (idx, part) in parts.iter().enumerate() {
            if idx == 0 {
                let Part::Ident(first) = &part.part else {
                    unreachable!("an identifier first")
                };
                match scope.private.get(first) {
                    Some(v) => {
                        cur = v.v.clone();
                        safe = v.safe;
                    }
                    None => match self.public.get(first) {
                        Some(v) => cur = v.clone(),
                        None => return Ok(nil),
                    },
                }
            } else {
                // After `*T` is dereferenced, the forloop is a struct.
                let kind = match &cur {
                    V::Loop(_) => "struct",
                    other => other.kind(),
                };
                cur = match (&part.part, &cur) {
                    (Part::Int(i), V::Str(text)) => match text.as_bytes().get(*i as usize) {
                        Some(b) if *i >= 0 => V::Int(i64::from(*b)),
                        _ => return Ok(nil),
                    },
                    (Part::Int(i), V::List(l)) => match l.get(*i as usize) {
                        Some(v) if *i >= 0 => v.clone(),
                        _ => return Ok(nil),
                    },
                    (Part::Int(_), _) => {
                        return Err(fail(format!(
                            "Can't access an index on type {kind} (variable {})",
                            name()
                        )))
                    }
                    (Part::Ident(f), V::Loop(l)) => {
                        let l = l.borrow();
                        match f.as_str() {
                            "Counter" => V::Int(l.counter),
                            "Counter0" => V::Int(l.counter0),
                            "Revcounter" => V::Int(l.revcounter),
                            "Revcounter0" => V::Int(l.revcounter0),
                            "First" => V::Bool(l.first),
                            "Last" => V::Bool(l.last),
                            "Parentloop" => match &l.parent {
                                Some(p) => V::Loop(p.clone()),
                                None => return Ok(nil),
                            },
                            _ => return Ok(nil),
                        }
                    }
                    (Part::Ident(f), V::Map(m)) => match m.entries.get(f) {
                        Some(v) => v.clone(),
                        None => return Ok(nil),
                    },
                    (Part::Ident(_), _) => {
                        return Err(fail(format!(
                            "Can't access a field by name on type {kind} (variable {})",
                            name()
                        )))
                    }
                };
            }
            if cur.is_nil() {
                return Ok(nil);
            }
            if part.call.is_some() || matches!(cur, V::ConfigGet) {
                if !matches!(cur, V::ConfigGet) {
                    return Err(fail(format!(
                        "'{}' is not a function (it is {})",
                        name(),
                        cur.kind()
                    )));
                }
                let args: &[Expr] = part.call.as_deref().unwrap_or(&[]);
                if args.len() != 2 {
                    return Err(fail(format!(
                        "Function input argument count (2) of '{}' must be equal to the calling argument count ({}).",
                        name(),
                        args.len()
                    )));
                }
                let k = self.eval(&args[0], scope)?;
                let d = self.eval(&args[1], scope)?;
                match self.config.get(&k.v.string()) {
                    Some(v) => {
                        cur = s(v.trim_end_matches(['\r', '\n']));
                        safe = false;
                    }
                    None => {
                        cur = d.v;
                        safe = d.safe;
                    }
                }
            }
            if cur.is_nil() {
                return Ok(nil);
            }
        }
        Ok(Val { v: cur, safe })
    }
}

/// A Go map value of the context.
pub(crate) fn map(ty: &'static str, entries: BTreeMap<String, V>) -> V {
    V::Map(Rc::new(Map { ty, entries }))
}

/// pongo2's private `pongo2` variable (`{{ pongo2.version }}`).
pub(crate) fn meta() -> Val {
    let mut m = BTreeMap::new();
    m.insert("version".to_string(), s(super::PONGO2_VERSION));
    Val::from(map("pongo2.Context", m))
}
