//! What ops do with a stopped run: resume it, or roll it back.

use pulih_model::state::{DrillState, PlanRunState, RecoveryKind};

use super::{ROLLBACK, advance, queue_member};
use crate::recovery::drill::{self, Ask};
use crate::recovery::{RecoveryError, RecoveryResult, spec_of};
use crate::state::Shared;
use crate::store::{PlanMember, PlanRunRow};

/// Resumes a stopped run: the failed servers of its failed groups are
/// tried again; then the plan goes on.
pub fn resume(st: &Shared, run: &PlanRunRow, actor: &str, now: i64) -> RecoveryResult<()> {
    let id = &run.id;
    let members = st.store.plan_members(id)?;
    let rolled_back = members.iter().any(|m| m.group == ROLLBACK);
    if run.state != PlanRunState::Stopped || rolled_back {
        return Err(RecoveryError::Conflict(format!(
            "plan run {id} is {}{}: only a stopped run that was not rolled back can resume",
            run.state,
            if rolled_back {
                " (a rollback was asked for)"
            } else {
                ""
            }
        )));
    }
    // The retries are queued first, then the run is moved: the 30 s loop
    // never sees a running run with a failed group and nothing queued
    // (it would stop it again). Attempt ids make a double resume harmless.
    let spec = spec_of(run)?;
    for (i, g) in spec.groups.iter().enumerate() {
        for server in &g.servers {
            let tries: Vec<&PlanMember> = members
                .iter()
                .filter(|m| m.group == g.name && &m.server == server)
                .collect();
            if tries
                .last()
                .is_some_and(|m| m.drill.state == DrillState::Failed)
            {
                queue_member(st, run, i, &g.name, server, tries.len() + 1, now)?;
            }
        }
    }
    if !st.store.set_plan_run_state(
        id,
        &[PlanRunState::Stopped],
        PlanRunState::Running,
        None,
        None,
    )? {
        return Err(RecoveryError::Conflict(format!(
            "plan run {id} changed state meanwhile"
        )));
    }
    st.store.audit(
        actor,
        "plan.resume",
        &format!("{id}: plan {}", run.plan),
        now,
    )?;
    advance(st, id, now)
}

/// Rolls a run back under `order`. Not approved yet: cancelled (nothing
/// of it ran). A failover plan: every server it brought up at the DRC is
/// failed back (the DRC's changes are replicated to the primary, so
/// nothing written while failed over is lost), later groups first. A drill
/// plan: the run is closed; the executor then tears down the drills it
/// kept up for the later groups.
pub fn rollback(
    st: &Shared,
    run: &PlanRunRow,
    actor: &str,
    order: &str,
    now: i64,
) -> RecoveryResult<()> {
    let id = &run.id;
    let moved = |from: PlanRunState, to: PlanRunState, finished: Option<i64>| {
        st.store.set_plan_run_state(id, &[from], to, None, finished)
    };
    if run.state == PlanRunState::AwaitingApproval {
        if !moved(
            PlanRunState::AwaitingApproval,
            PlanRunState::RolledBack,
            Some(now),
        )? {
            return Err(RecoveryError::Conflict(format!(
                "plan run {id} changed state meanwhile"
            )));
        }
        st.store.audit(
            actor,
            "plan.cancel",
            &format!("{id}: cancelled before its approvals were complete, under order: {order}"),
            now,
        )?;
        return Ok(());
    }
    if run.kind != RecoveryKind::Failover {
        if !moved(PlanRunState::Stopped, PlanRunState::RolledBack, Some(now))? {
            return Err(RecoveryError::Conflict(format!(
                "plan run {id} is {}: only a stopped run can be rolled back",
                run.state
            )));
        }
        st.store.audit(
            actor,
            "plan.rolled-back",
            &format!(
                "{id}: a drill plan, closed; its kept-up drills are torn down, under order: {order}"
            ),
            now,
        )?;
        return Ok(());
    }
    if !st.store.set_plan_run_state(
        id,
        &[PlanRunState::Stopped, PlanRunState::Passed],
        PlanRunState::RollingBack,
        None,
        None,
    )? {
        return Err(RecoveryError::Conflict(format!(
            "plan run {id} is {}: only a failover run awaiting approval, stopped or passed can be rolled back",
            run.state
        )));
    }
    st.store.audit(
        actor,
        "plan.rollback",
        &format!("{id}: plan {}, under order: {order}", run.plan),
        now,
    )?;
    let members = st.store.plan_members(id)?;
    let active = st.store.active_failovers()?;
    let spec = spec_of(run)?;
    for g in spec.groups.iter().rev() {
        for server in &g.servers {
            let Some(failover) = members
                .iter()
                .rev()
                .find(|m| m.group == g.name && &m.server == server)
                .map(|m| &m.drill.id)
                .filter(|f| active.get(server) == Some(*f))
            else {
                continue;
            };
            let attempt = members
                .iter()
                .filter(|m| m.group == ROLLBACK && &m.server == server)
                .count()
                + 1;
            let fid = format!("{id}-rb-{server}-{attempt}");
            drill::queue(
                st,
                Ask {
                    kind: RecoveryKind::Failback,
                    server,
                    snapshot: Some(failover.clone()),
                    trigger: "plan",
                    actor,
                    id: fid.clone(),
                    why: &format!(
                        ", ends {failover}, rollback of plan run {id}, under order: {order}"
                    ),
                },
                now,
            )?;
            st.store.add_plan_member(id, ROLLBACK, server, &fid)?;
        }
    }
    advance(st, id, now)
}

/// A rolling-back run, once its failbacks ended: `rolled-back` when none
/// of its servers is still up at the DRC, else `stopped` saying which are.
pub(super) fn advance_rollback(st: &Shared, run: &PlanRunRow, now: i64) -> RecoveryResult<()> {
    let members = st.store.plan_members(&run.id)?;
    if members
        .iter()
        .any(|m| m.group == ROLLBACK && m.drill.state.is_open())
    {
        return Ok(());
    }
    let still_up: Vec<String> = {
        let active = st.store.active_failovers()?;
        members
            .iter()
            .filter(|m| m.group != ROLLBACK && active.get(&m.server) == Some(&m.drill.id))
            .map(|m| m.server.clone())
            .collect()
    };
    let (state, error, finished) = if still_up.is_empty() {
        (PlanRunState::RolledBack, None, Some(now))
    } else {
        (
            PlanRunState::Stopped,
            Some(format!(
                "the rollback's failback of {} failed; these servers are still up at the DRC (see their failbacks; roll back again)",
                still_up.join(", ")
            )),
            None,
        )
    };
    if st.store.set_plan_run_state(
        &run.id,
        &[PlanRunState::RollingBack],
        state,
        error.as_deref(),
        finished,
    )? {
        st.store.audit(
            "controller",
            &format!("plan.{state}"),
            &format!("{}: {}", run.id, error.as_deref().unwrap_or("rolled back")),
            now,
        )?;
    }
    Ok(())
}
