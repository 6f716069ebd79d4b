/** The public surface of the console module: other modules and the app import only from here (checked by npm run lint). */
export { ConsoleModule } from './console.module';
