import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { i18n } from './i18n';
import { router } from './router';
// Element Plus's dark palette (components' own styles come on demand with them).
import 'element-plus/theme-chalk/dark/css-vars.css';
import './styles/base.css';

createApp(App).use(createPinia()).use(i18n).use(router).mount('#app');
