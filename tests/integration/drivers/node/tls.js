// node-postgres over TLS (ssl without CA checks, as sslmode=require):
// connects, checks its socket is a TLS one and the server's side too.
// Arguments: host port user password dbname [plus]. With "plus" it asks
// for SCRAM-SHA-256-PLUS (enableChannelBinding) and checks that was the
// mechanism it logged in with.
const { Client } = require('pg');
const [host, port, user, password, database, mode] = process.argv.slice(2);
const plus = mode === 'plus';
(async () => {
	const c = new Client({ host, port: Number(port), user, password, database,
		ssl: { rejectUnauthorized: false }, connectionTimeoutMillis: 10000,
		enableChannelBinding: plus });
	let mechanism = null;
	const first = c.connection.sendSASLInitialResponseMessage.bind(c.connection);
	c.connection.sendSASLInitialResponseMessage = (m, r) => { mechanism = m; return first(m, r); };
	try {
		await c.connect();
		if (plus && mechanism !== 'SCRAM-SHA-256-PLUS') {
			console.log(`not ok - node-postgres: logged in with ${mechanism}, not SCRAM-SHA-256-PLUS`);
			return;
		}
		const tls = c.connection.stream.encrypted === true;
		const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
		const named = await c.query({ name: 'plus', text: 'SELECT $1::int + 1 AS v', values: [41] });
		if (tls && r.rows[0].ssl && named.rows[0].v === 42)
			console.log(`ok - node-postgres over TLS${plus ? ' with SCRAM-SHA-256-PLUS' : ''} (server side TLS too)`);
		else
			console.log(`not ok - node-postgres: client TLS ${tls}, server TLS ${r.rows[0].ssl}`);
	} catch (e) {
		console.log(`not ok - node-postgres: ${e.message}`);
	} finally {
		await c.end().catch(() => {});
	}
})();
