//! pulih-agent: sources, backup/restore jobs, controller client, DRC role (later issues).
