//! What no single document can check: references between kinds,
//! duplicates, Pasal 9 consistency, recovery specs and plans. Every problem
//! is a [`Diagnostic`] at the offending field.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) fn validate_target(t: &Located<DrcTargetSpec>, d: &mut Vec<Diagnostic>) {
    let url = &t.spec().url;
    let ok = url.starts_with('/')
        || url.starts_with("file://")
        || url.starts_with("memory://")
        || (url.starts_with("s3://") && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some()));
    if !ok {
        d.push(t.diag(
            "spec.url",
            format!("invalid store URL `{url}`: use an absolute path, file:///PATH or s3://BUCKET/PREFIX?endpoint=…"),
        ));
    }
    if t.spec().max_concurrent_jobs == Some(0) {
        d.push(t.diag(
            "spec.maxConcurrentJobs",
            "maxConcurrentJobs must be at least 1",
        ));
    }
}

pub(super) fn validate_pd(
    set: &ManifestSet,
    pd: &Located<PerangkatDaerahSpec>,
    d: &mut Vec<Diagnostic>,
) {
    let spec = pd.spec();
    if spec.code.trim().is_empty() {
        d.push(pd.diag("spec.code", "code must not be empty"));
    }
    if !set.drc_targets.contains_key(&spec.drc_target) {
        d.push(pd.diag(
            "spec.drcTarget",
            format!(
                "DrcTarget `{}` is not defined in these manifests",
                spec.drc_target
            ),
        ));
    }
    if let Some(key) = &spec.walidata.public_key
        && key.parse::<age::x25519::Recipient>().is_err()
    {
        d.push(pd.diag(
            "spec.walidata.publicKey",
            "publicKey is not an age X25519 public key (`age1…`)",
        ));
    }
    if let Some(w) = &spec.replication_window
        && w.start == w.end
    {
        d.push(pd.diag(
            "spec.replicationWindow",
            "replication window start and end are equal",
        ));
    }
    if spec.max_concurrent_jobs == Some(0) {
        d.push(pd.diag(
            "spec.maxConcurrentJobs",
            "maxConcurrentJobs must be at least 1",
        ));
    }
    if let Some(drills) = &spec.drills
        && drills.schedule.is_some()
        && !drills.consent
    {
        d.push(pd.diag(
            "spec.drills.schedule",
            "a drill schedule needs `consent: true` from the walidata",
        ));
    }
}

pub(super) fn validate_server(set: &ManifestSet, s: &Located<ServerSpec>, d: &mut Vec<Diagnostic>) {
    let spec = s.spec();
    if !set.perangkat_daerah.contains_key(&spec.perangkat_daerah) {
        d.push(s.diag(
            "spec.perangkatDaerah",
            format!(
                "PerangkatDaerah `{}` is not defined in these manifests",
                spec.perangkat_daerah
            ),
        ));
    }
    let c = &spec.centralization;
    match c.status {
        CentralizationStatus::Centralized if spec.location != Location::PusatData => {
            d.push(s.diag(
                "spec.location",
                "the server is declared centralized but its location is not `pusat-data` (Pasal 9)",
            ))
        }
        CentralizationStatus::Migrating | CentralizationStatus::Pending if c.deadline.is_none() => {
            d.push(s.diag(
                "spec.centralization",
                "a `migrating` or `pending` server needs a `deadline` (YYYY-MM-DD)",
            ))
        }
        CentralizationStatus::Exempt
            if c.legal_basis.as_deref().is_none_or(|b| b.trim().is_empty()) =>
        {
            d.push(s.diag(
                "spec.centralization",
                "an `exempt` server needs a `legalBasis`",
            ))
        }
        _ => {}
    }
    if spec.sources.is_empty() {
        d.push(s.diag("spec.sources", "at least one source is required"));
    }
    for (i, src) in spec.sources.iter().enumerate() {
        let at = format!("spec.sources[{i}]");
        let set_count = [
            src.path.is_some(),
            src.docker_volume.is_some(),
            src.docker_container.is_some(),
            src.dump.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set_count != 1 {
            d.push(s.diag(
                &at,
                format!("a source sets exactly one of path, dockerVolume, dockerContainer, dump (this one sets {set_count})"),
            ));
        }
        if let Some(p) = &src.path
            && !p.starts_with('/')
        {
            d.push(s.diag(
                &format!("{at}.path"),
                format!("source path `{p}` must be absolute"),
            ));
        }
        if let Some(dump) = &src.dump {
            if dump.command.is_empty() {
                d.push(s.diag(
                    &format!("{at}.dump.command"),
                    "dump command must not be empty",
                ));
            }
            if dump.file_name.is_empty()
                || dump.file_name.contains('/')
                || dump.file_name.starts_with('.')
            {
                d.push(s.diag(
                    &format!("{at}.dump.fileName"),
                    format!("fileName `{}` must be a plain file name", dump.file_name),
                ));
            }
        }
        if !src.exclude.is_empty() && src.path.is_none() {
            d.push(s.diag(
                &format!("{at}.exclude"),
                "exclude applies to path sources only",
            ));
        }
    }
    if let Some(hooks) = &spec.hooks {
        for (phase, list) in [("pre", &hooks.pre), ("post", &hooks.post)] {
            for (i, h) in list.iter().enumerate() {
                if h.command.is_empty() == h.pause.is_none() {
                    d.push(s.diag(
                        &format!("spec.hooks.{phase}[{i}]"),
                        "a hook sets exactly one of `command` or `pause`",
                    ));
                }
            }
        }
    }
    if let Some(r) = &spec.retention
        && *r == Retention::default()
    {
        d.push(s.diag(
            "spec.retention",
            "retention keeps nothing; set at least one keep* field",
        ));
    }
    if let Some(rec) = &spec.recovery {
        validate_recovery(s, rec, d);
    }
}

pub(super) fn validate_recovery(
    s: &Located<ServerSpec>,
    rec: &RecoverySpec,
    d: &mut Vec<Diagnostic>,
) {
    let mut names = BTreeSet::new();
    // Two published ports on the same host port and protocol collide when
    // either listens on every address or both on the same one.
    let mut published: Vec<(&str, &port::PortMapping)> = Vec::new();
    for (i, c) in rec.containers.iter().enumerate() {
        for (j, p) in c.ports.iter().enumerate() {
            let clash = published.iter().find(|(_, q)| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((other, q)) = clash {
                d.push(s.diag(
                    &format!("spec.recovery.containers[{i}].ports[{j}]"),
                    format!(
                        "port `{p}` is published twice on the same host port (also `{q}` of container `{other}`)"
                    ),
                ));
            }
            published.push((c.name.as_str(), p));
        }
        if !is_dns_label(&c.name) {
            d.push(s.diag(
                &format!("spec.recovery.containers[{i}].name"),
                format!(
                    "invalid container name `{}`: use lowercase letters, digits and `-`",
                    c.name
                ),
            ));
        }
        if let Some(l) = &c.limits {
            let at = format!("spec.recovery.containers[{i}].limits");
            if l.memory.is_some_and(|m| m.0 < ContainerLimits::MIN_MEMORY) {
                d.push(s.diag(&format!("{at}.memory"), "memory must be at least 6MiB"));
            }
            if l.cpus.is_some_and(|c| !(c.is_finite() && c >= 0.01)) {
                d.push(s.diag(
                    &format!("{at}.cpus"),
                    "cpus must be a number of CPUs of at least 0.01",
                ));
            }
            if l.pids.is_some_and(|p| p < ContainerLimits::MIN_PIDS) {
                d.push(s.diag(&format!("{at}.pids"), "pids must be at least 16"));
            }
        }
        if !names.insert(c.name.as_str()) {
            d.push(s.diag(
                &format!("spec.recovery.containers[{i}].name"),
                format!("duplicate container name `{}`", c.name),
            ));
        }
        let sources: BTreeSet<&str> = s
            .spec()
            .sources
            .iter()
            .filter_map(|src| src.docker_volume.as_deref().or(src.path.as_deref()))
            .collect();
        for (j, v) in c.volumes.iter().enumerate() {
            if !sources.contains(v.source.as_str()) {
                d.push(s.diag(
                    &format!("spec.recovery.containers[{i}].volumes[{j}].source"),
                    format!(
                        "volume source `{}` is not a dockerVolume or path of this server's sources",
                        v.source
                    ),
                ));
            }
        }
    }
    for (i, h) in rec.health_checks.iter().enumerate() {
        let at = format!("spec.recovery.healthChecks[{i}]");
        let kinds = [h.http.is_some(), h.tcp.is_some(), h.exec.is_some()];
        if kinds.iter().filter(|b| **b).count() != 1 {
            d.push(s.diag(&at, "a health check sets exactly one of http, tcp, exec"));
        }
        let container = h
            .http
            .as_ref()
            .map(|x| (x.container.as_str(), "http"))
            .or(h.tcp.as_ref().map(|x| (x.container.as_str(), "tcp")))
            .or(h.exec.as_ref().map(|x| (x.container.as_str(), "exec")));
        if let Some((c, kind)) = container
            && !names.contains(c)
        {
            d.push(s.diag(
                &format!("{at}.{kind}.container"),
                format!("container `{c}` is not one of spec.recovery.containers"),
            ));
        }
    }
}

pub(super) fn validate_plan(
    set: &ManifestSet,
    p: &Located<RecoveryPlanSpec>,
    d: &mut Vec<Diagnostic>,
) {
    let spec = p.spec();
    if set.servers.contains_key(p.name()) {
        d.push(p.diag(
            "metadata.name",
            format!(
                "a Server is named `{}` too; `pulih drill run NAME` and `pulih failover start NAME` take either, so a plan needs a name of its own",
                p.name()
            ),
        ));
    }
    if spec.groups.is_empty() {
        d.push(p.diag("spec.groups", "a recovery plan needs at least one group"));
    }
    let mut names = BTreeMap::new();
    for (i, g) in spec.groups.iter().enumerate() {
        if g.name == "rollback" {
            d.push(p.diag(
                &format!("spec.groups[{i}].name"),
                "`rollback` is reserved (a run's rollback is recorded under it); name the group otherwise",
            ));
        }
        if names.insert(g.name.as_str(), i).is_some() {
            d.push(p.diag(
                &format!("spec.groups[{i}].name"),
                format!("duplicate group `{}`", g.name),
            ));
        }
        if g.servers.is_empty() {
            d.push(p.diag(
                &format!("spec.groups[{i}].servers"),
                "a group needs at least one server",
            ));
        }
        for (j, srv) in g.servers.iter().enumerate() {
            if let Some(first) = spec.groups[..i]
                .iter()
                .find(|o| o.servers.contains(srv))
                .or_else(|| g.servers[..j].contains(srv).then_some(g))
            {
                d.push(p.diag(
                    &format!("spec.groups[{i}].servers[{j}]"),
                    format!(
                        "Server `{srv}` is already in group `{}` of this plan (a server is recovered once per run)",
                        first.name
                    ),
                ));
            }
            if !set.servers.contains_key(srv) {
                d.push(p.diag(
                    &format!("spec.groups[{i}].servers[{j}]"),
                    format!("Server `{srv}` is not defined in these manifests"),
                ));
            }
        }
    }
    // Dependencies: must name groups of this plan, and form no cycle.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); spec.groups.len()];
    for (i, g) in spec.groups.iter().enumerate() {
        for (j, dep) in g.depends_on.iter().enumerate() {
            match names.get(dep.as_str()) {
                Some(&k) if k == i => d.push(p.diag(
                    &format!("spec.groups[{i}].dependsOn[{j}]"),
                    format!("group `{dep}` depends on itself"),
                )),
                // Groups start in the plan's order: a dependency comes first.
                Some(&k) if k > i => {
                    d.push(p.diag(
                        &format!("spec.groups[{i}].dependsOn[{j}]"),
                        format!(
                            "group `{dep}` is listed after `{}`; groups start in the order they are listed, so list the groups a group depends on before it",
                            g.name
                        ),
                    ));
                    edges[i].push(k);
                }
                Some(&k) => edges[i].push(k),
                None => d.push(p.diag(
                    &format!("spec.groups[{i}].dependsOn[{j}]"),
                    format!("group `{dep}` is not a group of this plan"),
                )),
            }
        }
    }
    if let Some(i) = find_cycle(&edges) {
        d.push(p.diag(
            &format!("spec.groups[{i}].dependsOn"),
            format!(
                "group `{}` is part of a dependency cycle",
                spec.groups[i].name
            ),
        ));
    }
    for (i, r) in spec.approvals.iter().enumerate() {
        if spec.approvals[..i].contains(r) {
            d.push(p.diag(
                &format!("spec.approvals[{i}]"),
                format!("`{}` is named twice (each role approves once)", r.as_str()),
            ));
        }
    }
    // A run records each step's outcome by name, so names are unique.
    for (field, steps) in [
        ("preSteps", &spec.pre_steps),
        ("postSteps", &spec.post_steps),
    ] {
        for (i, st) in steps.iter().enumerate() {
            if st.name.trim().is_empty() {
                d.push(p.diag(&format!("spec.{field}[{i}].name"), "a step needs a name"));
            } else if steps[..i].iter().any(|o| o.name == st.name) {
                d.push(p.diag(
                    &format!("spec.{field}[{i}].name"),
                    format!("duplicate step `{}` in {field}", st.name),
                ));
            }
            if st.command.first().is_none_or(|c| c.is_empty()) {
                d.push(p.diag(
                    &format!("spec.{field}[{i}].command"),
                    "a step needs a command: the program and its arguments, e.g. [/usr/local/bin/status-page, set, degraded]",
                ));
            }
        }
    }
}

/// A node on a cycle of `edges`, if any (iterative three-colour DFS).
pub(super) fn find_cycle(edges: &[Vec<usize>]) -> Option<usize> {
    let mut state = vec![0u8; edges.len()]; // 0 new, 1 on stack, 2 done
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match state[to] {
                    1 => return Some(to),
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    None
}
