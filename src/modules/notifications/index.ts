/** The public surface of the notifications module: other modules and the app import only from here (checked by npm run lint). */
export { ChannelsService } from './channels.service';
export { DeliveriesService } from './deliveries.service';
export { NotificationsModule } from './notifications.module';
export { PolicyService } from './policy.service';
export { RosterService } from './roster.service';
