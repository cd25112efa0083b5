//! What a system file can run: the workloads whose ops it defines, and the faults it does not
//! refuse (`[unsupported]`). Checked before anything is deployed.

use nemesis::FaultKind;
use workloads::Workload;

use super::{Loaded, OPS};

impl Loaded {
    /// `workloads` split into those the file defines every op of and those it does not.
    pub fn supported(&self, workloads: &[Workload]) -> (Vec<Workload>, Vec<Workload>) {
        workloads
            .iter()
            .partition(|w| self.check_workloads(std::slice::from_ref(w)).is_ok())
    }

    /// Refuses workloads whose ops the file does not define.
    pub fn check_workloads(&self, workloads: &[Workload]) -> Result<(), String> {
        for w in workloads {
            for (op, wl, _) in OPS {
                if *wl == w.name() && self.op(op).is_none() {
                    return Err(format!(
                        "{}: the {wl} workload needs client.ops.{op}, which the file does not define",
                        self.path.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The fault kinds the file refuses, in `FaultKind::ALL`'s order.
    pub fn unsupported_faults(&self) -> Vec<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(|k| self.refusal(*k).is_some())
            .collect()
    }

    /// Why the system cannot take faults of `kind`: the file's `[unsupported]` reason, or, for
    /// the membership fault, the missing `[commands] leave`.
    pub fn refusal(&self, kind: FaultKind) -> Option<String> {
        if let Some(why) = self.spec.unsupported.get(kind.name()) {
            return Some(why.clone());
        }
        (kind == FaultKind::Member && self.spec.commands.leave.is_none()).then(|| {
            "the file defines no [commands] leave (how a node leaves the cluster and joins \
             again as a new member)"
                .to_owned()
        })
    }

    /// Refuses fault kinds the file says the system cannot take, with the file's reason.
    pub fn check_faults(&self, kinds: &[FaultKind]) -> Result<(), String> {
        match kinds
            .iter()
            .find_map(|k| self.refusal(*k).map(|why| (k, why)))
        {
            Some((k, why)) => Err(format!(
                "{}: {} cannot take the {} fault: {why}; leave `{}` out of --nemesis",
                self.path.display(),
                self.spec.name,
                k.name(),
                k.name()
            )),
            None => Ok(()),
        }
    }

    /// Checks `[unsupported]`: every key a fault kind, every reason given.
    pub(super) fn validate_unsupported(&self) -> Result<(), String> {
        for (k, why) in &self.spec.unsupported {
            if FaultKind::parse(k).is_none() {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                return Err(format!(
                    "unsupported.{k}: not a fault kind (known: {})",
                    known.join(", ")
                ));
            }
            if why.trim().is_empty() {
                return Err(format!(
                    "unsupported.{k}: say why the system cannot take it (the text is shown when it is refused)"
                ));
            }
        }
        Ok(())
    }
}
