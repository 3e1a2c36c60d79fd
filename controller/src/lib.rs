//! pulih-controller: API, scheduler, inventory (later issues).
