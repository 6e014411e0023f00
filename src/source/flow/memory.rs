//! Shared in-process state: lock acquisitions and atomics, and writes to them under a second
//! acquisition of a value read under the first.

use std::collections::HashSet;

use syn::Expr;

use super::syntax::*;
use super::{Acquisition, Walker};
use crate::source::facts::*;
use crate::source::span::Ends;

/// Methods that lock or load shared state.
/// (`RefCell::borrow` is not here: a `RefCell` cannot be shared between requests.)
pub(super) const LOCKS: &[&str] = &["lock", "read", "write", "try_lock"];
/// Methods that change a collection or value behind a lock.
pub(super) const MUTATORS: &[&str] = &[
    "insert",
    "push",
    "push_back",
    "push_front",
    "extend",
    "remove",
    "entry",
    "retain",
    "clear",
    "set",
    "replace",
    "append",
];

impl Walker<'_, '_, '_> {
    /// A write to shared state through a temporary acquisition, of a value read under another.
    pub(super) fn check_mem_write(&mut self, recv: &str, dest: &Val, value: &Val, at: &impl Ends) {
        let this: HashSet<usize> = dest
            .origins
            .iter()
            .filter_map(|o| match o {
                Origin::Mem(a) => Some(*a),
                _ => None,
            })
            .collect();
        if this.is_empty() {
            return; // through a held guard
        }
        for o in &value.origins {
            if let Origin::Mem(a) = o {
                if !this.contains(a) && self.acqs[*a].receiver == recv {
                    let read = self.acqs[*a].span.clone();
                    let write = self.span(at);
                    self.mem.push(MemRmw {
                        receiver: recv.to_string(),
                        read,
                        write,
                        atomic: false,
                    });
                    return;
                }
            }
        }
    }

    /// A lock acquisition, an atomic load or store; `None` for any other call.
    pub(super) fn shared_state(&mut self, m: &syn::ExprMethodCall, method: &str) -> Option<Val> {
        if LOCKS.contains(&method) && m.args.is_empty() {
            let receiver = text_of(&m.receiver);
            self.acqs.push(Acquisition {
                receiver: receiver.clone(),
                span: self.span(m),
            });
            let mut v = Val::of(Origin::Mem(self.acqs.len() - 1));
            v.guard_of = Some(receiver);
            return Some(v);
        }
        let is_ordering = |e: &Expr| {
            let t = text_of(e);
            [
                "Ordering", "SeqCst", "Relaxed", "Acquire", "Release", "AcqRel",
            ]
            .iter()
            .any(|o| t.contains(o))
        };
        if method == "load" && m.args.len() == 1 && is_ordering(&m.args[0]) {
            let receiver = text_of(&m.receiver);
            self.acqs.push(Acquisition {
                receiver,
                span: self.span(m),
            });
            return Some(Val::of(Origin::Mem(self.acqs.len() - 1)));
        }
        if method == "store" && m.args.len() == 2 && is_ordering(&m.args[1]) {
            let receiver = text_of(&m.receiver);
            let v = self.expr(&m.args[0]);
            self.acqs.push(Acquisition {
                receiver: receiver.clone(),
                span: self.span(m),
            });
            let dest = Val::of(Origin::Mem(self.acqs.len() - 1));
            let before = self.mem.len();
            if self.held_locks == 0 {
                self.check_mem_write(&receiver, &dest, &v, m);
            }
            for rmw in &mut self.mem[before..] {
                rmw.atomic = true;
            }
            return Some(Val::default());
        }
        None
    }
}
