// The run's test databases are dropped here, together, rather than one after each file (test-databases.js).
const { RUN_ENV, dropRunDatabases } = require('./test-databases');

module.exports = async () => {
  if (process.env[RUN_ENV]) await dropRunDatabases(process.env[RUN_ENV]);
};
