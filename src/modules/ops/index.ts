/** The public surface of the ops module: other modules and the app import only from here (checked by npm run lint). */
export { OpsModule } from './ops.module';
export { QueueBoard, QUEUE_BOARD_PATH } from './queue-board';
