// Logs in with node-postgres and runs SELECT 1; prints "ok" or
// "E:SQLSTATE message". Usage: node auth_login.js PORT USER PASSWORD DB
const { Client } = require('pg');
const [port, user, password, database] = process.argv.slice(2);
(async () => {
	const c = new Client({ host: '127.0.0.1', port: +port, user, password, database, ssl: false });
	try {
		await c.connect();
		await c.query('SELECT 1');
		await c.end();
		console.log('ok');
	} catch (e) {
		console.log('E:' + (e.code || '?') + ' ' + e.message);
		process.exit(0);
	}
})();
