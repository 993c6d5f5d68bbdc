//! What a PostgreSQL error says about the server rather than about the statement.

/// Whether `error` means the database could not serve the statement now, though it may in a
/// moment: out of reach, restarting or shutting down, out of connections, or read-only because
/// it is a standby (a primary demoted in a failover, before the clients have moved to the new
/// one: SQLSTATE 25006). The API answers these 503, and the worker tries its batch again.
pub fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            // 08 connection exception, 53 insufficient resources, 57 operator intervention
            // (admin shutdown, cannot connect now), 58 system error.
            ["08", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "25006"
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::unavailable;

    #[test]
    fn the_connection_failing_is_unavailable_a_statement_failing_is_not() {
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        assert!(unavailable(&sqlx::Error::Io(std::io::Error::other(
            "reset"
        ))));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
        assert!(!unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
