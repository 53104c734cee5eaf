// Logs in with node-postgres and runs SELECT 1, once for each line of stdin
// ("PORT USER PASSWORD", tab separated); prints one line per login: "ok" or
// "E:SQLSTATE message". Usage: node auth_login.js DB
const { Client } = require('pg');
const database = process.argv[2];
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter((l) => l);
(async () => {
	for (const line of lines) {
		const [port, user, password] = line.split('\t');
		const c = new Client({ host: '127.0.0.1', port: +port, user, password, database, ssl: false });
		try {
			await c.connect();
			await c.query('SELECT 1');
			await c.end();
			console.log('ok');
		} catch (e) {
			console.log('E:' + (e.code || '?') + ' ' + e.message);
		}
	}
})();
